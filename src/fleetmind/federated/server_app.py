"""fleetmind's ServerApp: R rounds of Flower's strategy, a row and a checkpoint per round.

Each round Flower samples the sites, they train from the global weights and
reply with new ones; the guarded strategy (:mod:`fleetmind.federated.strategies`)
aggregates, then every site evaluates the new global weights on its own env. After
the round the server checkpoints the global policy and appends its row to
metrics.jsonl: ``round``, ``env_steps``, ``episode_return_mean`` (the sites' mean
return), ``return_min``, ``return_max``, ``site_returns``, ``update_norm_mean``,
``update_norm_max``, ``clipped_fraction``, ``excluded_updates``, ``failed_sites``,
``refused_sites`` and, with differential privacy, ``epsilon`` spent so far at ``delta``
(with local DP, ``local_epsilon``: the most a site has spent, at ``local_dp_delta``).
Every message names the global policy's spaces, so that a site whose own differ
refuses at its first round (:mod:`fleetmind.federated.strategies`).

An error that ends the run (a FleetmindError) is also written to the run
directory's ``error.json``, where the command that submitted the run finds it.

``app`` is what ``flwr run`` loads (settings from the run config);
:func:`build_server_app` gives the command its own, with the settings in hand and
an :class:`Outcome` to carry the summary (or the error) back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from fleetmind.core.errors import FleetmindError
from fleetmind.federated.accountant import epsilon_spent, local_epsilon_spent, noise_for_epsilon
from fleetmind.federated.global_run import GlobalRun
from fleetmind.federated.secure_aggregation import secure_rounds
from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.site_training import Weights, spaces_of
from fleetmind.federated.strategies import RoundStats, SiteGuard, build_strategy, wait_for_sites

log = logging.getLogger("fleetmind.federated")

ERROR_FILE = "error.json"
"""Where the ServerApp leaves the error that ended the run."""
ROUND_TIMEOUT_S = 3600.0
"""How long the server waits for a round's replies."""


@dataclass
class Outcome:
    """What the ServerApp hands back to the command that started it."""

    summary: dict[str, Any] | None = None
    error: BaseException | None = None


def resolved_noise(settings: FederationSettings) -> float | None:
    """The noise multiplier of the run: --dp-noise, or the one --dp-target-epsilon picks."""
    if settings.dp_target_epsilon is not None:
        return noise_for_epsilon(
            settings.dp_target_epsilon,
            settings.rounds,
            settings.sample_size(),
            settings.sites,
            settings.dp_delta,
        )
    return settings.dp_noise


def round_row(stats: RoundStats, clip: float | None) -> dict[str, Any]:
    """The metrics row of one round (without its counters and epsilon)."""
    norms = stats.update_norms
    evaluation = stats.evaluation
    row: dict[str, Any] = {
        "episode_return_mean": evaluation.get("return_mean"),
        "return_min": evaluation.get("return_min"),
        "return_max": evaluation.get("return_max"),
        "site_returns": evaluation.get("site_returns"),
        "update_norm_mean": float(np.mean(norms)) if norms else None,
        "update_norm_max": float(np.max(norms)) if norms else None,
        "clipped_fraction": (stats.clipped / len(norms)) if norms and clip else None,
        "excluded_updates": stats.excluded,
        "failed_sites": stats.failed,
        "refused_sites": sorted(stats.refused),
    }
    return row


def record_round(
    run: GlobalRun,
    settings: FederationSettings,
    noise: float | None,
    server_round: int,
    weights: Weights,
    row: dict[str, Any],
) -> None:
    """Add epsilon spent so far to the round's ``row`` (and with local DP, the most any
    site has spent: one update a round), checkpoint and log it."""
    if noise is not None:
        row["epsilon"] = epsilon_spent(
            noise, server_round, settings.sample_size(), settings.sites, settings.dp_delta
        )
    if settings.local_dp_epsilon is not None:
        row["local_epsilon"] = local_epsilon_spent(
            settings.local_dp_epsilon, settings.local_dp_delta, server_round
        )
    run.record(server_round, weights, row)
    log.info(
        "round %d/%d: mean return %s, epsilon %s",
        server_round,
        settings.rounds,
        row["episode_return_mean"],
        row.get("epsilon"),
    )


def run_rounds(grid: Grid, context: Context, settings: FederationSettings) -> dict[str, Any]:
    """The whole federation on ``grid``; returns the summary."""
    noise = resolved_noise(settings)
    run = GlobalRun(settings, noise)
    if settings.secure_aggregation:
        return run_secure_rounds(grid, context, settings, noise, run)
    guard: SiteGuard = build_strategy(settings, noise)

    def after_round(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0:
            return None
        stats = guard.rounds.get(server_round, RoundStats())
        weights = {k: v.numpy() for k, v in arrays.items()}
        record_round(run, settings, noise, server_round, weights, round_row(stats, guard.clip))
        return None

    initial = ArrayRecord({k: Array(np.asarray(v)) for k, v in run.initial_weights().items()})
    spaces = spaces_of(run.parts)
    guard.start(
        grid=grid,
        initial_arrays=initial,
        num_rounds=settings.rounds,
        timeout=ROUND_TIMEOUT_S,
        train_config=ConfigRecord(dict(spaces)),
        evaluate_config=ConfigRecord(dict(spaces)),
        evaluate_fn=after_round,
    )
    return run.finish({"refused_sites": {str(k): v for k, v in sorted(guard.refusals.items())}})


def run_secure_rounds(
    grid: Grid,
    context: Context,
    settings: FederationSettings,
    noise: float | None,
    run: GlobalRun,
) -> dict[str, Any]:
    """The federation with SecAgg+ training (:mod:`fleetmind.federated.secure_aggregation`)
    and the ordinary evaluation; update norms are not known (the server sees only sums)."""
    guard = build_strategy(settings, None)  # its evaluation: every site's return
    spaces = spaces_of(run.parts)
    wait_for_sites(grid, settings.sites)

    def after_round(server_round: int, weights: Weights, dropouts: int) -> None:
        arrays = ArrayRecord({k: Array(np.asarray(v)) for k, v in weights.items()})
        messages = guard.configure_evaluate(server_round, arrays, ConfigRecord(dict(spaces)), grid)
        guard.aggregate_evaluate(
            server_round, grid.send_and_receive(messages, timeout=ROUND_TIMEOUT_S)
        )
        stats = guard.rounds.setdefault(server_round, RoundStats())
        stats.failed = dropouts
        record_round(run, settings, noise, server_round, weights, round_row(stats, None))

    secure_rounds(grid, context, settings, noise, run.initial_weights(), spaces, after_round)
    return run.finish({"refused_sites": {str(k): v for k, v in sorted(guard.refusals.items())}})


def write_error(settings: FederationSettings, error: FleetmindError) -> None:
    """The run directory's ``error.json``: the error that ended the run, for the command
    that submitted it (the deployment engine runs the ServerApp in a process of its own)."""
    if settings.run_dir is not None and Path(settings.run_dir).is_dir():
        text = json.dumps({"error": str(error), "kind": type(error).__name__})
        (Path(settings.run_dir) / ERROR_FILE).write_text(text + "\n")


def build_server_app(
    settings: FederationSettings | None = None, outcome: Outcome | None = None
) -> ServerApp:
    """A ServerApp for ``settings`` (None: from the run config) reporting to ``outcome``."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        cfg = settings or FederationSettings.from_run_config(dict(context.run_config))
        try:
            cfg.validate()
            summary = run_rounds(grid, context, cfg)
        except BaseException as exc:
            if isinstance(exc, FleetmindError):
                write_error(cfg, exc)
            if outcome is None:
                raise
            outcome.error = exc
            return
        if outcome is not None:
            outcome.summary = summary

    return app


app = build_server_app()
"""The ServerApp ``flwr run`` starts (settings from the run config)."""
