"""fleetmind's ClientApp: a site trains and evaluates with its own environment.

A train message carries the global weights; the reply carries only the site's new
weights and its step count (its weight in the mean). An evaluate message carries
the new global weights; the reply carries the site's mean return over a few
episodes. Nothing else about the site leaves it. Which site a node is comes from
its node config (``partition-id``; the simulation engine numbers its nodes so).

``app`` is what ``flwr run`` loads (settings from the run config);
:func:`build_client_app` gives the command its own, with the settings in hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from fleetmind.core.errors import ConfigError
from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.site_training import SiteTrainer, Weights, round_seed
from fleetmind.federated.strategies import WEIGHT_KEY

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation episodes use seeds apart from the training ones."""


def site_of(context: Context, settings: FederationSettings) -> int:
    """This node's site index, from its node config."""
    site = int(context.node_config.get("partition-id", -1))
    if not 0 <= site < settings.sites:
        raise ConfigError(
            f"this node's partition-id is {site}, outside the run's {settings.sites} sites; "
            "start each SuperNode with --node-config 'partition-id=I'"
        )
    return site


def weights_of(message: Message) -> Weights:
    """The global weights a message carries, by name."""
    record = message.content["arrays"]
    return {k: v.numpy() for k, v in record.items()}  # type: ignore[union-attr]


def reply(message: Message, weights: Weights | None, metrics: dict[str, float]) -> Message:
    """A reply with ``weights`` (when given) and ``metrics``."""
    content = RecordDict({"metrics": MetricRecord(metrics)})  # type: ignore[arg-type]
    if weights is not None:
        content["arrays"] = ArrayRecord({k: Array(np.asarray(v)) for k, v in weights.items()})
    return Message(content=content, reply_to=message)


def clip_when_asked(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower's client-side clipping, for train messages whose config names a bound."""
    config = message.content.config_records.get("config")
    if (
        message.metadata.message_type == MessageType.TRAIN
        and config
        and KEY_CLIPPING_NORM in config
    ):
        return fixedclipping_mod(message, context, call_next)
    return call_next(message, context)


def build_client_app(
    settings: FederationSettings | None = None, mods: Sequence[Mod] = ()
) -> ClientApp:
    """A ClientApp for ``settings`` (None: read them from each message's run config);
    ``mods`` run outside the clipping one."""
    app = ClientApp(mods=[*mods, clip_when_asked])

    def resolve(context: Context) -> FederationSettings:
        return settings or FederationSettings.from_run_config(dict(context.run_config))

    @app.train()
    def train(message: Message, context: Context) -> Message:
        cfg = resolve(context)
        site = site_of(context, cfg)
        server_round = int(message.content["config"]["server-round"])  # type: ignore[arg-type]
        result = SiteTrainer(cfg, site).train(weights_of(message), server_round)
        return reply(message, result.weights, {WEIGHT_KEY: float(cfg.local_steps)})

    @app.evaluate()
    def evaluate(message: Message, context: Context) -> Message:
        cfg = resolve(context)
        site = site_of(context, cfg)
        server_round = int(message.content["config"]["server-round"])  # type: ignore[arg-type]
        seed = round_seed(cfg.seed + EVAL_SEED_OFFSET, site, server_round)
        returns = SiteTrainer(cfg, site).evaluate(weights_of(message), cfg.eval_episodes, seed)
        metrics = {WEIGHT_KEY: float(len(returns)), "return": float(np.mean(returns)), "site": site}
        return reply(message, None, metrics)

    return app


app = build_client_app()
"""The ClientApp ``flwr run`` starts (settings from the run config)."""
