"""Flower's strategies as a federated run uses them, behind one guard.

::

    SiteGuard                      drops non-finite updates (counted), measures update norms
      DifferentialPrivacy...       Flower's DP wrapper: clip to C (server side), add noise
        FedAvg | FedProx | FedMedian | FedTrimmedAvg     Flower's aggregation

Every site reports the same weight (its step budget), so the mean is the plain mean
of updates the DP noise is calibrated for. Evaluation replies are gathered per site
(:func:`gather_returns`), so a round's row names every site's return.
"""

from __future__ import annotations

import math
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

from fleetmind.federated.settings import FederationSettings, min_sites

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
        self._current: list[np.ndarray] = []

    def summary(self) -> None:
        """Flower's summary of the wrapped strategy."""
        self.strategy.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global weights the round starts from."""
        self._current = arrays.to_numpy_ndarrays()
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Drop non-finite replies, measure the rest, aggregate with the wrapped strategy."""
        stats = self.rounds.setdefault(server_round, RoundStats())
        kept: list[Message] = []
        for reply in replies:
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
        metrics = self.strategy.aggregate_evaluate(server_round, replies)
        if metrics is not None:
            self.rounds.setdefault(server_round, RoundStats()).evaluation = dict(metrics)
        return metrics


def base_strategy(settings: FederationSettings) -> FedAvg:
    """Flower's aggregation for ``settings.strategy`` with the run's sampling."""
    common = {
        "fraction_train": settings.sample_fraction,
        "fraction_evaluate": 1.0,
        "min_train_nodes": min_sites(settings),
        "min_evaluate_nodes": settings.sites,
        "min_available_nodes": settings.sites,
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
    return SiteGuard(strategy, clip)
