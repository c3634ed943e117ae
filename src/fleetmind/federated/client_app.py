"""fleetmind's ClientApp: a site trains and evaluates with its own environment.

A train message carries the global weights; the reply carries only the site's new
weights and its step count (its weight in the mean). An evaluate message carries
the new global weights; the reply carries the site's mean return over a few
episodes. Nothing else about the site leaves it. Which site a node is comes from
its node config (``partition-id``; the simulation engine numbers its nodes so), and
so may its private environment (``env-params="length=0.4,masscart=1.0"``, and
``env-id`` where it runs another env than the run's), which then overrides the run's.

Every message names the global policy's observation and action spaces; a site whose
own differ does not train: it replies with a refusal naming both (a ConfigRecord
under :data:`REFUSAL`), which the server's guard counts and reports.

``app`` is what ``flwr run`` loads (settings from the run config);
:func:`build_client_app` gives the command its own, with the settings in hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.client.mod import LocalDpMod as LegacyLocalDpMod
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import LocalDpMod, fixedclipping_mod
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from fleetmind.core.errors import ConfigError
from fleetmind.federated.secure_aggregation import FIT_CONFIG, fit_reply, read_fit, secure_mods
from fleetmind.federated.settings import FederationSettings, parse_params
from fleetmind.federated.site_training import (
    SiteTrainer,
    SpaceMismatchError,
    Weights,
    round_seed,
)
from fleetmind.federated.strategies import REFUSAL, SPACE_KEYS, WEIGHT_KEY

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


def site_trainer(
    config: Mapping[str, Any], context: Context, settings: FederationSettings
) -> SiteTrainer:
    """The trainer of this node's site: its env from the node config when it names
    one, and the global policy's spaces from the message's ``config``."""
    site = site_of(context, settings)
    node = context.node_config
    params = parse_params(str(node["env-params"])) if "env-params" in node else None
    expected = {key: str(config[key]) for key in SPACE_KEYS if key in config}
    env_id = str(node["env-id"]) if "env-id" in node else None
    if env_id is not None and params is None:
        params = {}  # the run's parameters are for the run's env, not the site's own
    return SiteTrainer(settings, site, env_id, params, expected)


def refuse(message: Message, site: int, error: SpaceMismatchError) -> Message:
    """A reply that says why the site does not take part, and nothing else."""
    record = ConfigRecord({"site": site, "reason": str(error)})
    return Message(content=RecordDict({REFUSAL: record}), reply_to=message)


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


def sparing_refusals(
    mod: Mod, message: Message, context: Context, call_next: ClientAppCallable
) -> Message:
    """``mod`` around ``call_next``, except that a refusal (no weights to work on) is
    passed on as the site made it."""
    refusals: list[Message] = []

    def inner(msg: Message, ctx: Context) -> Message:
        out = call_next(msg, ctx)
        if not out.has_error() and REFUSAL in out.content:
            refusals.append(out)
        return out

    done = mod(message, context, inner)
    return refusals[0] if refusals else done


def clip_when_asked(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower's client-side clipping, for train messages whose config names a bound."""
    config = message.content.config_records.get("config")
    if not (
        message.metadata.message_type == MessageType.TRAIN
        and config
        and KEY_CLIPPING_NORM in config
    ):
        return call_next(message, context)
    return sparing_refusals(fixedclipping_mod, message, context, call_next)


def local_dp_mod(settings: FederationSettings, workflow: bool = False) -> Mod | None:
    """Flower's LocalDpMod for ``settings`` (None without local DP): clip each update to
    C, add Gaussian noise for (epsilon, delta) at sensitivity 2C; ``workflow``: the one
    for the messages of secure-aggregation rounds."""
    if settings.local_dp_epsilon is None or settings.local_dp_clip is None:
        return None
    kind = LegacyLocalDpMod if workflow else LocalDpMod
    clip = settings.local_dp_clip
    return kind(clip, 2 * clip, settings.local_dp_epsilon, settings.local_dp_delta)


def local_dp_when_asked(resolve: Callable[[Context], FederationSettings]) -> Mod:
    """Local DP on every train reply of a run whose settings ask for it."""

    def apply(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
        mod = local_dp_mod(resolve(context), workflow=FIT_CONFIG in message.content)
        if mod is None or message.metadata.message_type != MessageType.TRAIN:
            return call_next(message, context)
        return sparing_refusals(mod, message, context, call_next)

    return apply


def build_client_app(
    settings: FederationSettings | None = None, mods: Sequence[Mod] = ()
) -> ClientApp:
    """A ClientApp for ``settings`` (None: read them from each message's run config);
    ``mods`` run outside SecAgg+'s, the clipping and the local DP ones."""

    def resolve(context: Context) -> FederationSettings:
        return settings or FederationSettings.from_run_config(dict(context.run_config))

    inner = [*secure_mods(), clip_when_asked, local_dp_when_asked(resolve)]
    app = ClientApp(mods=[*mods, *inner])

    @app.train()
    def train(message: Message, context: Context) -> Message:
        cfg = resolve(context)
        if FIT_CONFIG in message.content:  # a round of secure aggregation
            weights, config = read_fit(message)
            trained = site_trainer(config, context, cfg).train(weights, int(config["server-round"]))
            return fit_reply(message, trained.weights)
        trainer = site_trainer(message.content["config"], context, cfg)
        server_round = int(message.content["config"]["server-round"])  # type: ignore[arg-type]
        try:
            result = trainer.train(weights_of(message), server_round)
        except SpaceMismatchError as exc:
            return refuse(message, trainer.site, exc)
        return reply(message, result.weights, {WEIGHT_KEY: float(cfg.local_steps)})

    @app.evaluate()
    def evaluate(message: Message, context: Context) -> Message:
        cfg = resolve(context)
        trainer = site_trainer(message.content["config"], context, cfg)
        site = trainer.site
        server_round = int(message.content["config"]["server-round"])  # type: ignore[arg-type]
        seed = round_seed(cfg.seed + EVAL_SEED_OFFSET, site, server_round)
        try:
            returns = trainer.evaluate(weights_of(message), cfg.eval_episodes, seed)
        except SpaceMismatchError as exc:
            return refuse(message, site, exc)
        metrics = {WEIGHT_KEY: float(len(returns)), "return": float(np.mean(returns)), "site": site}
        return reply(message, None, metrics)

    return app


app = build_client_app()
"""The ClientApp ``flwr run`` starts (settings from the run config)."""
