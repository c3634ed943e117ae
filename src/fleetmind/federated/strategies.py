"""Flower's strategies as a federated run uses them, behind one guard.

::

    SiteGuard                      drops non-finite updates (counted), measures update norms
      DifferentialPrivacy...       Flower's DP wrapper: clip to C (server side), add noise
        FedAvg | FedProx | FedMedian | FedTrimmedAvg     Flower's aggregation

Every site reports the same weight (its step budget), so the mean is the plain mean
of updates the DP noise is calibrated for. Evaluation replies are gathered per site
(:func:`gather_returns`), so a round's row names every site's return. A site whose
spaces are not the global policy's replies with a refusal (:data:`REFUSAL`): the
guard leaves it out, logs its reason once, and stops the run (ConfigError) when the
sites left are fewer than the strategy needs.

The first round waits until every site has joined; after that a round samples from
the sites still connected, down to the strategy's minimum: a site whose SuperNode
dies mid-round is answered for by the SuperLink (an error reply, once it has missed
its heartbeats), counted in ``failed_sites``, and the round aggregates the rest; the
site is sampled again once it rejoins.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Strategy,
)

from fleetmind.core.errors import ConfigError
from fleetmind.federated.settings import FederationSettings, min_sites

log = logging.getLogger("fleetmind.federated")

REFUSAL = "refusal"
"""The record of a reply in which a site declines the round (with ``site`` and ``reason``)."""
SPACE_KEYS = ("observation-space", "action-space")
"""The config keys naming the global policy's spaces, sent with every message."""
WEIGHT_KEY = "num-examples"
"""The key of a reply's weight (Flower's default)."""
CLIP_TOLERANCE = 1e-4
"""An update whose norm is within this fraction below C counts as clipped (client side)."""


@dataclass
class RoundStats:
    """What the guard saw of one round's training replies."""

    replies: int = 0
    """Replies without an error."""
    failed: int = 0
    """Replies carrying an error (a site's exception)."""
    excluded: int = 0
    """Replies dropped for non-finite weights."""
    update_norms: list[float] = field(default_factory=list)
    """L2 norm of each kept update (new weights minus the global ones)."""
    clipped: int = 0
    """Kept updates whose norm reached the clipping bound."""
    evaluation: dict[str, Any] = field(default_factory=dict)
    """The sites' evaluation of the new global weights."""
    refused: set[int] = field(default_factory=set)
    """Sites that declined the round (their spaces are not the global policy's)."""


def gather_returns(records: list[RecordDict], _weight_key: str) -> MetricRecord:
    """Evaluation replies -> mean, min, max and every site's return (by site)."""
    by_site = sorted(
        (int(metrics["site"]), float(metrics["return"]))  # type: ignore[arg-type]
        for record in records
        for metrics in record.metric_records.values()
    )
    returns = [r for _, r in by_site]
    return MetricRecord(
        {
            "return_mean": float(np.mean(returns)),
            "return_min": min(returns),
            "return_max": max(returns),
            "site_returns": returns,
        }
    )


def update_norm(new: list[np.ndarray], old: list[np.ndarray]) -> float:
    """L2 norm of ``new - old`` over every array."""
    return math.sqrt(sum(float(np.sum((n - o) ** 2)) for n, o in zip(new, old, strict=True)))


class SiteGuard(Strategy):
    """Keeps non-finite updates out of the aggregate and records each round's numbers."""

    def __init__(self, strategy: Strategy, clip: float | None) -> None:
        self.strategy = strategy
        self.clip = clip
        self.rounds: dict[int, RoundStats] = {}
        self.refusals: dict[int, str] = {}
        """Every site that refused, with its reason (the first one it gave)."""
        self.needed = 1
        """Training replies a round needs (the strategy's minimum)."""
        self.sites = 0
        """Sites the first round waits for; later rounds go on with those still there."""
        self._current: list[np.ndarray] = []

    def _refused(self, server_round: int, reply: Message) -> bool:
        """Record ``reply`` when it is a refusal; True if it was."""
        if reply.has_error() or REFUSAL not in reply.content:
            return False
        record = reply.content[REFUSAL]
        site, reason = int(record["site"]), str(record["reason"])  # type: ignore[arg-type]
        self.rounds.setdefault(server_round, RoundStats()).refused.add(site)
        if site not in self.refusals:
            self.refusals[site] = reason
            log.error("site %d refused round %d and is left out: %s", site, server_round, reason)
        return True

    def summary(self) -> None:
        """Flower's summary of the wrapped strategy."""
        self.strategy.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global weights the round starts from; before the first round,
        wait until every site has joined."""
        self._current = arrays.to_numpy_ndarrays()
        if not self.rounds:
            wait_for_sites(grid, self.sites)
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Drop non-finite replies, measure the rest, aggregate with the wrapped strategy."""
        stats = self.rounds.setdefault(server_round, RoundStats())
        kept: list[Message] = []
        for reply in replies:
            if self._refused(server_round, reply):
                continue
            if reply.has_error():
                stats.failed += 1
                kept.append(reply)  # the wrapped strategy decides what an error means
                continue
            arrays = [
                a for rec in reply.content.array_records.values() for a in rec.to_numpy_ndarrays()
            ]
            if not all(np.all(np.isfinite(a)) for a in arrays):
                stats.excluded += 1
                continue
            norm = update_norm(arrays, self._current)
            stats.replies += 1
            stats.update_norms.append(norm)
            stats.clipped += int(self.clip is not None and norm >= self.clip * (1 - CLIP_TOLERANCE))
            kept.append(reply)
        if stats.refused and stats.replies < self.needed:
            reasons = "; ".join(self.refusals[s] for s in sorted(stats.refused))
            raise ConfigError(
                f"round {server_round} cannot go on: {stats.replies} sites trained, the "
                f"strategy needs {self.needed}; {reasons}"
            )
        if not any(not r.has_error() for r in kept):
            return None, None
        return self.strategy.aggregate_train(server_round, kept)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Every site evaluates the new global weights."""
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Gather the sites' returns and keep them with the round's numbers."""
        kept = [r for r in replies if not self._refused(server_round, r)]
        if not kept:
            return None
        metrics = self.strategy.aggregate_evaluate(server_round, kept)
        if metrics is not None:
            self.rounds.setdefault(server_round, RoundStats()).evaluation = dict(metrics)
        return metrics


def wait_for_sites(grid: Grid, sites: int, log_every_s: float = 10.0) -> None:
    """Return once ``grid`` has at least ``sites`` nodes."""
    last = 0.0
    while (online := len(list(grid.get_node_ids()))) < sites:
        if time.monotonic() - last >= log_every_s:
            log.info("waiting for sites to join: %d of %d", online, sites)
            last = time.monotonic()
        time.sleep(0.5)


def base_strategy(settings: FederationSettings) -> FedAvg:
    """Flower's aggregation for ``settings.strategy`` with the run's sampling."""
    common = {
        "fraction_train": settings.sample_fraction,
        "fraction_evaluate": 1.0,
        "min_train_nodes": min_sites(settings),
        "min_evaluate_nodes": min_sites(settings),
        "min_available_nodes": min_sites(settings),
        "weighted_by_key": WEIGHT_KEY,
        "evaluate_metrics_aggr_fn": gather_returns,
    }
    if settings.strategy == "fedprox":
        return FedProx(proximal_mu=settings.proximal_mu, **common)  # type: ignore[arg-type]
    if settings.strategy == "fedmedian":
        return FedMedian(**common)  # type: ignore[arg-type]
    if settings.strategy == "trimmed-mean":
        return FedTrimmedAvg(beta=settings.trim_fraction, **common)  # type: ignore[arg-type]
    return FedAvg(**common)  # type: ignore[arg-type]


def build_strategy(settings: FederationSettings, noise: float | None) -> SiteGuard:
    """The guarded strategy; with ``noise`` (z), wrapped in Flower's fixed-clipping DP."""
    strategy: Strategy = base_strategy(settings)
    clip = settings.dp_clip if noise is not None else None
    if noise is not None and clip is not None:
        wrapper = (
            DifferentialPrivacyServerSideFixedClipping
            if settings.dp_clipping == "server"
            else DifferentialPrivacyClientSideFixedClipping
        )
        strategy = wrapper(strategy, noise, clip, settings.sample_size())
    guard = SiteGuard(strategy, clip)
    guard.needed = min_sites(settings)
    guard.sites = settings.sites
    return guard
