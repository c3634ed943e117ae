"""Secure aggregation with Flower's SecAgg+: the server only ever sees the sum.

Flower offers SecAgg+ in its workflow API (``SecAggPlusWorkflow`` driving a strategy
of ``flwr.server.strategy``), so with ``--secure-aggregation`` a round's training is::

    SecAggPlusWorkflow        setup, share keys, collect masked vectors, unmask
      RoundCounter            counts the sites that dropped out
        DifferentialPrivacyClientSideFixedClipping   (with DP: noise on the mean)
          FedAvg              the mean of what unmasking yields

and its evaluation is the one of every run (every site plays the new global weights).
A site masks its new weights with pairwise masks and its own; the server learns only
the (weighted) sum of the sampled sites' weights. A site that drops out after sharing
its key shares has its masks removed by ``threshold`` of its neighbours, so up to
``sampled - threshold`` sites may drop out of a round and it still completes.

On the site (:func:`secure_mods`), Flower's ``secaggplus_mod`` answers the protocol's
messages, and with DP its ``fixedclipping_mod`` clips the update before it is masked
(server-side clipping cannot work: the server never sees an update).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from flwr.app import Context, Message
from flwr.client.mod import fixedclipping_mod as legacy_fixedclipping_mod
from flwr.client.mod import secaggplus_mod
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.common import (
    Code,
    ConfigRecord,
    FitRes,
    Parameters,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.compat.common import recorddict_compat as compat
from flwr.server import ServerConfig
from flwr.server.client_proxy import ClientProxy
from flwr.server.compat.app_utils import start_update_client_manager_thread
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg, Strategy
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey
from flwr.serverapp import Grid
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from fleetmind.federated.settings import FederationSettings, min_sites
from fleetmind.federated.site_training import Weights

log = logging.getLogger("fleetmind.federated")

FIT_CONFIG = "fitins.config"
"""The record of a workflow train message that holds its config."""
NAMES_KEY = "weight-names"
"""Config key of the weights' names, in order, one per line (the workflow sends a list)."""
CLIPPING_RANGE = 8.0
"""Weights are clipped to [-8, 8] before they are quantised (Flower's default)."""
QUANTIZATION_RANGE = 2**22
"""Levels of the quantisation: a step of 16 / 2**22 = 3.8e-6 per weight."""
FailureList = list[tuple[ClientProxy, FitRes] | BaseException]


def quantisation_step() -> float:
    """The width of one quantisation level: the error of one site's weight is under it."""
    return 2 * CLIPPING_RANGE / (QUANTIZATION_RANGE - 1)


def when(key: str, mod: Mod) -> Mod:
    """``mod`` for messages holding record ``key``; others pass straight through."""

    def apply(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        if key in message.content:
            return mod(message, context, call_next)
        return call_next(message, context)

    return apply


def clip_legacy_when_asked(
    message: Message, context: Context, call_next: ClientAppCallable
) -> Message:
    """Flower's client-side clipping of a workflow train message that names a bound."""
    if KEY_CLIPPING_NORM in message.content[FIT_CONFIG]:
        return legacy_fixedclipping_mod(message, context, call_next)
    return call_next(message, context)


def secure_mods() -> list[Mod]:
    """The site's mods for secure aggregation, outermost first (masking after clipping)."""
    return [when(RECORD_KEY_CONFIGS, secaggplus_mod), when(FIT_CONFIG, clip_legacy_when_asked)]


def read_fit(message: Message) -> tuple[Weights, dict[str, Any]]:
    """The global weights (by name) and the config of a workflow train message."""
    fitins = compat.recorddict_to_fitins(message.content, keep_input=True)
    names = str(fitins.config[NAMES_KEY]).split("\n")
    arrays = parameters_to_ndarrays(fitins.parameters)
    return dict(zip(names, arrays, strict=True)), dict(fitins.config)


def fit_reply(message: Message, weights: Weights) -> Message:
    """The reply to a workflow train message: the new weights, weight 1 (a plain mean)."""
    fitres = FitRes(
        Status(Code.OK, ""),
        ndarrays_to_parameters([np.asarray(v) for v in weights.values()]),
        1,
        {},
    )
    return Message(content=compat.fitres_to_recorddict(fitres, keep_input=True), reply_to=message)


class RoundCounter(Strategy):
    """Passes everything to ``strategy``; counts each round's sampled sites and results
    (Flower's workflow lists some dropouts twice among its failures, so they are not
    counted from there)."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.sampled: dict[int, int] = {}
        self.results: dict[int, int] = {}

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: FailureList,
    ) -> tuple[Parameters | None, dict[str, Any]]:
        """Count, then aggregate with the wrapped strategy."""
        self.results[server_round] = len(results)
        return self.strategy.aggregate_fit(server_round, results, failures)

    def initialize_parameters(self, client_manager: Any) -> Parameters | None:
        """The wrapped strategy's."""
        return self.strategy.initialize_parameters(client_manager)

    def configure_fit(self, server_round: int, *args: Any) -> Any:
        """The wrapped strategy's, counted."""
        instructions = self.strategy.configure_fit(server_round, *args)
        self.sampled[server_round] = len(instructions)
        return instructions

    def dropouts(self, server_round: int) -> int:
        """Sampled sites of ``server_round`` whose weights are not in the aggregate."""
        return self.sampled.get(server_round, 0) - self.results.get(server_round, 0)

    def configure_evaluate(self, *args: Any) -> Any:
        """The wrapped strategy's."""
        return self.strategy.configure_evaluate(*args)

    def aggregate_evaluate(self, *args: Any) -> Any:
        """The wrapped strategy's."""
        return self.strategy.aggregate_evaluate(*args)

    def evaluate(self, *args: Any) -> Any:
        """The wrapped strategy's."""
        return self.strategy.evaluate(*args)


def legacy_strategy(
    settings: FederationSettings, noise: float | None, config: dict[str, str]
) -> RoundCounter:
    """FedAvg with the run's sampling (and client-side DP); ``config`` goes to every site."""

    def fit_config(server_round: int) -> dict[str, Any]:
        return {"server-round": server_round, **config}

    low = max(2, min_sites(settings))
    strategy: Strategy = FedAvg(
        fraction_fit=settings.sample_fraction,
        fraction_evaluate=0.0,
        min_fit_clients=low,
        min_evaluate_clients=low,
        min_available_clients=low,
        on_fit_config_fn=fit_config,
    )
    if noise is not None and settings.dp_clip is not None:
        strategy = DifferentialPrivacyClientSideFixedClipping(
            strategy, noise, settings.dp_clip, settings.sample_size()
        )
    return RoundCounter(strategy)


def secure_rounds(
    grid: Grid,
    context: Context,
    settings: FederationSettings,
    noise: float | None,
    initial: Weights,
    spaces: dict[str, str],
    after_round: Callable[[int, Weights, int], None],
) -> None:
    """Every round's training with SecAgg+; ``after_round(round, weights, dropouts)``."""
    names = list(initial)
    counter = legacy_strategy(settings, noise, {**spaces, NAMES_KEY: "\n".join(names)})
    legacy = LegacyContext(context, ServerConfig(num_rounds=settings.rounds), counter)
    workflow = SecAggPlusWorkflow(
        num_shares=1.0,
        reconstruction_threshold=settings.secagg_threshold,
        max_weight=1.0,
        clipping_range=CLIPPING_RANGE,
        quantization_range=QUANTIZATION_RANGE,
    )
    thread, stop, registered = start_update_client_manager_thread(grid, legacy.client_manager)
    registered.wait()
    params = ndarrays_to_parameters(list(initial.values()))
    legacy.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(params, True)
    cfg = ConfigRecord()
    legacy.state.config_records[MAIN_CONFIGS_RECORD] = cfg
    try:
        for server_round in range(1, settings.rounds + 1):
            cfg[WorkflowKey.CURRENT_ROUND] = server_round
            workflow(grid, legacy)
            record = legacy.state.array_records[MAIN_PARAMS_RECORD]
            arrays = parameters_to_ndarrays(compat.arrayrecord_to_parameters(record, True))
            dropouts = counter.dropouts(server_round)
            after_round(server_round, dict(zip(names, arrays, strict=True)), dropouts)
    finally:
        stop.set()
        thread.join()
