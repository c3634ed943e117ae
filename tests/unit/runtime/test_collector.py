import numpy as np
import pytest

from fleetmind.core.errors import EnvironmentStepError
from fleetmind.core.learning import StepOutput
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.envs.registry import make_vector_env
from fleetmind.envs.spaces import vector_spaces
from fleetmind.runtime.collector import RolloutCollector


class ConstantPolicy:
    """Always action 0; value = first observation feature (so next_values are checkable)."""

    def step(self, model_input: np.ndarray) -> StepOutput:
        n = model_input.shape[0]
        return StepOutput(
            np.zeros(n, dtype=np.int64), np.zeros(n, np.float32), model_input[:, 0].copy()
        )


def _collector(env_id: str, steps: int, envs: int = 2, stats: bool = False) -> RolloutCollector:
    env = make_vector_env(env_id, envs)
    obs_space, act_space = vector_spaces(env)
    return RolloutCollector(
        env,
        env_id,
        obs_space,
        act_space,
        steps,
        lambda a: a,
        RunningMeanStd(obs_space.shape) if stats else None,
    )


def test_autoreset_step_is_invalid_and_episode_counted() -> None:
    collector = _collector("fleetmind-test/Countdown-v0", steps=8)
    traj = collector.collect(ConstantPolicy())
    # Countdown(3): steps 0,1,2 valid (2 terminates), step 3 is the autoreset step.
    assert traj.valid[:, 0].tolist() == [True, True, True, False, True, True, True, False]
    assert traj.terminated[:, 0].tolist() == [False, False, True, False, False, False, True, False]
    assert traj.rewards[:, 0].tolist() == [1, 1, 1, 0, 1, 1, 1, 0]
    assert traj.obs[:, 0, 0].tolist() == [3, 2, 1, 0, 3, 2, 1, 0]
    # next value of each step is the value of the observation that followed it
    assert traj.next_values[:, 0].tolist() == [2, 1, 0, 3, 2, 1, 0, 3]
    assert collector.stats.episodes == 4
    assert list(collector.stats.returns) == [3.0] * 4
    assert collector.env_steps == 16


def test_state_carries_across_collect_calls() -> None:
    collector = _collector("fleetmind-test/Countdown-v0", steps=2, envs=1)
    first = collector.collect(ConstantPolicy())
    second = collector.collect(ConstantPolicy())
    assert first.valid[:, 0].tolist() == [True, True]
    assert second.valid[:, 0].tolist() == [True, False]
    assert collector.stats.episodes == 1


def test_nan_observation_names_env_and_step() -> None:
    collector = _collector("fleetmind-test/NaNObs-v0", steps=10, envs=2)
    with pytest.raises(EnvironmentStepError, match=r"fleetmind-test/NaNObs-v0 .* env step 10"):
        collector.collect(ConstantPolicy())


def test_observation_statistics_update() -> None:
    collector = _collector("CartPole-v1", steps=16, envs=4, stats=True)
    collector.collect(ConstantPolicy())
    assert collector.obs_stats is not None
    assert collector.obs_stats.count == 4 * 17  # reset + 16 steps
