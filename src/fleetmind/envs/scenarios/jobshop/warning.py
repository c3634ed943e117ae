"""Fault warning: the probability that a machine fails soon, from its wear readings.

A machine's sensor (:meth:`MachineLife.wear`) is read every ``sample_every``
time units while the machine runs. From the readings of the current life the
predictor builds four features: the last reading, the mean of the last
``window`` readings (the noise averages out), the drift (the mean of the newer
half of the window minus the older half) and the age (time since the renewal
over the mean life, which carries the Weibull hazard's information). A logistic
regression, fitted by Newton's method on run-to-failure histories of training
seeds, turns them into the probability that the machine fails within
``horizon``::

    model = reference_model()
    config = WarningConfig.for_model(model)
    predictor = FaultPredictor.fit(model, config, range(0, 20))
    report = evaluate_warning(predictor, range(100, 120))
    report.precision, report.recall, report.lead_median

A **warning** fires the first time a life's probability reaches the threshold
and stays on until the machine is renewed (a work order is issued). It is
**right** when the failure follows within ``horizon``; an earlier warning is a
false alarm (it would throw away life), a failure without a warning is missed.
Precision is right warnings over warnings, recall right warnings over failures,
and the **lead time** of a right warning is how long before the failure it fired.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel, MachineLife

FEATURES = ("reading", "window_mean", "drift", "age")
SWEEP = tuple(round(0.05 * k, 2) for k in range(1, 20))
"""The thresholds of the precision-recall sweep."""


def reference_model() -> BreakdownModel:
    """The breakdown model of a Taillard-sized shop (operations of 50 time units on
    average): ``BreakdownModel.for_instance`` of such an instance."""
    return BreakdownModel(
        mean_time_between_failures=1000, mean_repair_time=100, maintenance_time=25
    )


@dataclass(frozen=True)
class WarningConfig:
    """How the sensor is sampled and what counts as a right warning."""

    sample_every: int
    """Time between two readings of a running machine (>= 1)."""
    horizon: int
    """A warning is right when the failure follows within this time (>= sample_every)."""
    window: int = 6
    """Readings the smoothed features look back over (>= 2)."""

    def __post_init__(self) -> None:
        if self.sample_every < 1 or self.horizon < self.sample_every or self.window < 2:
            raise ConfigError(
                f"warning config: need sample_every >= 1 (got {self.sample_every}), horizon >= "
                f"sample_every (got {self.horizon}) and window >= 2 (got {self.window})"
            )

    @classmethod
    def for_model(cls, model: BreakdownModel) -> WarningConfig:
        """A reading per maintenance time; right warnings come within a fifth of the mean life."""
        step = model.maintenance_time
        horizon = max(step, round(0.2 * model.mean_time_between_failures))
        return cls(sample_every=step, horizon=horizon)


@dataclass
class Life:
    """One run-to-failure life: the readings' times, the features there, the failure."""

    times: np.ndarray
    features: np.ndarray
    failure_at: int


def life_features(readings: np.ndarray, ages: np.ndarray, window: int) -> np.ndarray:
    """``[len(readings), 4]`` features at each reading, from that life's readings so far."""
    values = np.asarray(readings, dtype=np.float64)
    total = np.concatenate([[0.0], np.cumsum(values)])
    end = np.arange(1, len(values) + 1)
    length = np.minimum(end, window)
    start, half = end - length, length // 2
    mean = (total[end] - total[start]) / length
    older = (total[start + half] - total[start]) / np.maximum(half, 1)
    newer = (total[end] - total[start + half]) / (length - half)
    drift = np.where(half > 0, newer - older, 0.0)
    return np.stack([values, mean, drift, np.asarray(ages, dtype=np.float64)], axis=1)


def simulate_lives(
    model: BreakdownModel, config: WarningConfig, seeds: Iterable[int], machines: int = 10,
    lives: int = 10,
) -> list[Life]:  # fmt: skip
    """``lives`` run-to-failure lives of each of ``machines`` machines per seed, read
    every ``sample_every`` from the renewal to the failure."""
    out = []
    for seed in seeds:
        for machine in range(machines):
            life = MachineLife(model, seed, machine)
            for _ in range(lives):
                times = np.arange(life.renewed_at, life.failure_at, config.sample_every)
                ages = (times - life.renewed_at) / model.mean_time_between_failures
                features = life_features(life.wear_series(times), ages, config.window)
                out.append(Life(times, features, life.failure_at))
                life.renew(life.repair_end)
    return out


def _logistic(z: np.ndarray) -> np.ndarray:
    p: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
    return p


@dataclass
class FaultPredictor:
    """A logistic regression of "fails within the horizon" on standardised features."""

    model: BreakdownModel
    config: WarningConfig
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    """Bias first, then one weight per feature."""
    threshold: float = 0.5
    """The probability at which a warning fires (the F1-best one on the training seeds)."""

    @classmethod
    def fit(
        cls, model: BreakdownModel, config: WarningConfig, seeds: Iterable[int], l2: float = 1e-3
    ) -> FaultPredictor:
        """Fit on the run-to-failure lives of ``seeds``; ConfigError when there are none."""
        seeds = list(seeds)
        if not seeds:
            raise ConfigError(
                "the training seed range is empty; give at least one seed (A:B, A < B)"
            )
        lives = simulate_lives(model, config, seeds)
        x = np.concatenate([life.features for life in lives])
        y = np.concatenate([life.failure_at - life.times <= config.horizon for life in lives])
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        design = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
        weights = np.zeros(design.shape[1])
        for _ in range(25):  # Newton's method (iteratively reweighted least squares)
            p = _logistic(design @ weights)
            gradient = design.T @ (p - y) / len(y) + l2 * weights
            hessian = (design.T * (p * (1 - p))) @ design / len(y) + l2 * np.eye(len(weights))
            step = np.linalg.solve(hessian, gradient)
            weights -= step
            if np.abs(step).max() < 1e-8:
                break
        predictor = cls(model, config, mean, scale, weights)
        predictor.threshold = max(SWEEP, key=lambda t: score_lives(predictor, lives, t).f1)
        return predictor

    def probability(self, features: np.ndarray) -> np.ndarray:
        """The probability of a failure within the horizon, for ``[..., 4]`` features."""
        z = self.weights[0] + ((features - self.mean) / self.scale) @ self.weights[1:]
        return _logistic(np.asarray(z))


@dataclass
class WarningReport:
    """How the warnings at one threshold did on a set of lives."""

    threshold: float
    failures: int
    warnings: int
    right: int
    precision: float
    recall: float
    f1: float
    lead_mean: float
    """Mean lead time of the right warnings (NaN when none)."""
    lead_median: float
    leads: list[int]

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "leads"}
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def score_lives(
    predictor: FaultPredictor, lives: Sequence[Life], threshold: float
) -> WarningReport:
    """The latched warnings at ``threshold`` on run-to-failure ``lives``."""
    warnings, leads = 0, []
    for life in lives:
        fired = np.flatnonzero(predictor.probability(life.features) >= threshold)
        if len(fired):
            warnings += 1
            lead = int(life.failure_at - life.times[fired[0]])
            if lead <= predictor.config.horizon:
                leads.append(lead)
    right = len(leads)
    precision = right / warnings if warnings else 0.0
    recall = right / len(lives) if lives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if right else 0.0
    return WarningReport(
        threshold, len(lives), warnings, right, precision, recall, f1,
        float(np.mean(leads)) if leads else math.nan,
        float(np.median(leads)) if leads else math.nan, leads,
    )  # fmt: skip


@dataclass
class WarningEvaluation:
    """The warning at the predictor's threshold and the precision-recall sweep."""

    at_threshold: WarningReport
    sweep: list[WarningReport]
    horizon: int
    sample_every: int

    def to_json(self) -> dict[str, Any]:
        return {
            **self.at_threshold.to_json(),
            "horizon": self.horizon,
            "sample_every": self.sample_every,
            "sweep": [r.to_json() for r in self.sweep],
        }


def evaluate_warning(
    predictor: FaultPredictor, seeds: Iterable[int], threshold: float | None = None
) -> WarningEvaluation:
    """Score the warnings on the run-to-failure lives of held-out ``seeds``."""
    seeds = list(seeds)
    if not seeds:
        raise ConfigError("the test seed range is empty; give at least one seed (A:B, A < B)")
    if threshold is not None and not 0 < threshold < 1:
        raise ConfigError(f"--threshold must lie in (0, 1), got {threshold}")
    lives = simulate_lives(predictor.model, predictor.config, seeds)
    chosen = predictor.threshold if threshold is None else threshold
    return WarningEvaluation(
        score_lives(predictor, lives, chosen),
        [score_lives(predictor, lives, t) for t in SWEEP],
        predictor.config.horizon,
        predictor.config.sample_every,
    )
