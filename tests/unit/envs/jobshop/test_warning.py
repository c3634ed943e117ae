"""The wear sensor drifts before a failure, noisily; the fault warning learns to see it."""

import numpy as np
import pytest

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel, MachineLife
from fleetmind.envs.scenarios.jobshop.warning import (
    FaultPredictor,
    WarningConfig,
    evaluate_warning,
    reference_model,
)


@pytest.fixture(scope="module")
def predictor() -> FaultPredictor:
    model = reference_model()
    return FaultPredictor.fit(model, WarningConfig.for_model(model), range(0, 4))


def test_the_sensor_is_flat_and_noisy_until_the_fault_drifts_before_the_failure() -> None:
    model = reference_model()
    early, late, at_half_life = [], [], []
    for seed in range(30):
        life = MachineLife(model, seed, 0)
        span = life.failure_at - life.renewed_at
        if span < 2 * life.warning_interval:
            continue
        times = np.arange(life.renewed_at, life.failure_at - life.warning_interval, 5)
        early.extend(life.wear_series(times))
        late.append(life.wear(life.failure_at - 1))
        at_half_life.append(life.wear(life.renewed_at + span // 2))
    assert len(late) > 10
    assert np.mean(late) > np.mean(early) + 0.6  # the drift before the failure
    assert 0.08 < np.std(early) < 0.3  # noise and calibration offsets, not a clean signal
    # the same fraction of a life reads about the same as a fresh machine: the
    # sensor does not know how long the life is
    assert abs(np.mean(at_half_life) - np.mean(early)) < 0.15


def test_the_warning_is_precise_and_early_on_held_out_seeds(predictor: FaultPredictor) -> None:
    result = evaluate_warning(predictor, range(100, 103))
    at = result.at_threshold
    assert at.failures == 3 * 10 * 10
    assert at.precision > 0.85
    assert at.recall > 0.8
    assert 0 < at.lead_median <= result.horizon
    assert at.leads
    assert min(at.leads) > 0
    # the sweep trades lead time against false alarms: lower thresholds warn earlier
    medians = [r.lead_median for r in result.sweep if r.right]
    assert medians == sorted(medians, reverse=True)
    assert result.sweep[0].precision < at.precision
    data = result.to_json()
    assert {"precision", "recall", "lead_mean", "lead_median", "sweep"} <= set(data)


def test_a_fixed_threshold_is_honoured(predictor: FaultPredictor) -> None:
    result = evaluate_warning(predictor, range(100, 101), threshold=0.3)
    assert result.at_threshold.threshold == 0.3
    with pytest.raises(ConfigError, match="threshold must lie in"):
        evaluate_warning(predictor, range(100, 101), threshold=1.5)


def test_empty_seed_ranges_are_refused(predictor: FaultPredictor) -> None:
    model = reference_model()
    with pytest.raises(ConfigError, match="training seed range is empty"):
        FaultPredictor.fit(model, WarningConfig.for_model(model), range(5, 5))
    with pytest.raises(ConfigError, match="test seed range is empty"):
        evaluate_warning(predictor, range(3, 1))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("warning_fraction", -0.1, "warning_fraction must be positive"),
     ("ageing_gain", 1.5, "ageing_gain must be in 0..1")],
)  # fmt: skip
def test_a_bad_sensor_model_is_refused(field: str, value: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BreakdownModel(1000, 100, **{field: value})


def test_a_bad_warning_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="horizon >= sample_every"):
        WarningConfig(sample_every=25, horizon=10)
