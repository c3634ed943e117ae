"""An update that diverges is rolled back and training goes on; too many in a row stop
the run with a checkpoint of the last good version (one process: the same LearnerRun)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import DivergedError
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import DistConfig
from fleetmind.runtime.learner.in_process import train_in_process
from fleetmind.runtime.learner.run import LearnerRun
from fleetmind.runtime.learner.run_setup import RunSetup
from fleetmind.runtime.local import prepare_new


def local_run(tmp_path: Path, steps: int) -> LearnerRun:
    config = TrainConfig(
        env_id="CartPole-v1", run_dir=tmp_path / "run", steps=steps, envs=2, seed=5
    )
    algo = PPOConfig(rollout_steps=16, update_epochs=1, minibatch_size=16)
    return LearnerRun(RunSetup(*prepare_new(config, algo)), DistConfig(), False, local_envs=2)


def poisoning(run: LearnerRun, bad: Callable[[int], bool]) -> list[int]:
    """Make update ``n`` (counting from 0) wreck the weights and report a NaN loss when
    ``bad(n)``; the numbers of the updates made so far."""
    learner = run.core.learner
    honest = learner.update
    calls: list[int] = []

    def update(trajectories: Sequence[Trajectory]) -> dict[str, float]:
        n = len(calls)
        calls.append(n)
        metrics = honest(trajectories)
        if bad(n):
            for tensor in learner.state_dict()["model"].values():
                tensor.fill_(float("nan"))
            metrics["value_loss"] = float("nan")
        return metrics

    learner.update = update  # type: ignore[method-assign]
    return calls


def model(run: LearnerRun) -> dict[str, Any]:
    return copy.deepcopy(run.core.learner.state_dict()["model"])


def test_a_diverged_update_is_rolled_back_and_training_goes_on(tmp_path: Path) -> None:
    run = local_run(tmp_path, steps=256)
    calls = poisoning(run, lambda n: n == 2)
    result = train_in_process(run, envs=2, trusted=False)
    core = run.core
    assert len(calls) == 9  # 256 steps of 32, and the rolled-back batch did not count
    assert core.guard.rolled_back == 1
    assert core.guard.in_row == 0
    assert core.env_steps == 256
    assert result.env_steps == 256
    assert core.version == 9  # the rollback still answered with a (good) version
    for tensor in model(run).values():
        assert torch.isfinite(tensor).all()
    record = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1]
    assert '"diverged_updates": 1' in record


def test_divergence_in_a_row_stops_with_a_checkpoint_of_the_last_good_version(
    tmp_path: Path,
) -> None:
    run = local_run(tmp_path, steps=10**6)
    good: list[dict[str, Any]] = []
    learner = run.core.learner
    honest = learner.update

    def remember(trajectories: Sequence[Trajectory]) -> dict[str, float]:
        metrics = honest(trajectories)
        good.append(model(run))
        return metrics

    learner.update = remember  # type: ignore[method-assign]
    poisoning(run, lambda n: n >= 2)  # two good updates, then every one diverges
    with pytest.raises(DivergedError, match="3 updates in a row were rolled back"):
        train_in_process(run, envs=2, trusted=False)
    assert run.core.guard.rolled_back == 3
    saved = run.setup.run_dir.checkpoints.load_latest()
    last_good = good[1]
    for name, tensor in saved["learner"]["model"].items():
        assert torch.equal(tensor, last_good[name]), name


def test_episodes_through_a_dropped_batch_are_not_counted(tmp_path: Path) -> None:
    from tests.integration.learner_harness import cartpole_chunk

    from fleetmind.core.exchange import Episode
    from fleetmind.runtime.local import prepare_new as prepare

    config = TrainConfig(env_id="CartPole-v1", run_dir=tmp_path / "run", steps=10**6, envs=2)
    algo = PPOConfig(rollout_steps=4, update_epochs=1, minibatch_size=8)
    run = LearnerRun(RunSetup(*prepare(config, algo)), DistConfig(), progress=False)
    core = run.core
    poisoning(run, lambda n: n == 0)
    session = core.register("a", "CartPole-v1", 2)
    # Chunk 0: no episode ends yet; its update diverges (enormous rewards, say).
    first = cartpole_chunk(session.session_id, core.incarnation)
    assert core.accept(session, first)
    batch = core.take_batch()
    assert batch is not None
    core.train_now(batch)
    assert core.guard.rolled_back == 1
    # Chunk 1 ends copy 0's episode with the return the rewards sum to: it agrees with
    # the data, but the data it spans were dropped, so it is not counted.
    second = cartpole_chunk(session.session_id, core.incarnation, version=core.version)
    second.seq = 1
    second.trajectories[0].terminated[0, 0] = True
    second.episodes = [Episode(5.0, 5, (5.0,))]
    assert core.accept(session, second)
    batch = core.take_batch()
    assert batch is not None
    core.train_now(batch)
    assert core.guard.rolled_back == 1
    assert core.stats.episodes == 0


def test_only_the_chunk_that_made_an_update_diverge_loses_its_episodes(tmp_path: Path) -> None:
    from tests.integration.learner_harness import cartpole_chunk

    from fleetmind.core.exchange import Episode

    config = TrainConfig(env_id="CartPole-v1", run_dir=tmp_path / "run", steps=10**6, envs=2)
    algo = PPOConfig(rollout_steps=4, update_epochs=1, minibatch_size=8)
    core = LearnerRun(RunSetup(*prepare_new(config, algo)), DistConfig(), progress=False).core
    learner = core.learner
    honest = learner.update

    def update(trajectories: Sequence[Trajectory]) -> dict[str, float]:
        if max(float(t.rewards.max()) for t in trajectories) > 1e20:
            return {"loss": float("nan")}  # what enormous rewards do to a real update
        return honest(trajectories)

    learner.update = update  # type: ignore[method-assign]
    honest_actor = core.register("honest", "CartPole-v1", 2)
    poisoner = core.register("poisoner", "CartPole-v1", 2)
    sent = {}
    for session, reward in ((honest_actor, 1.0), (poisoner, 1e30)):
        chunk = cartpole_chunk(session.session_id, core.incarnation)
        chunk.trajectories[0].rewards[:] = reward
        assert core.accept(session, chunk)
        sent[session.session_id] = reward
    batch = core.take_batch()
    assert batch is not None
    core.train_now(batch)
    assert core.guard.rolled_back == 1
    # Both episodes end in the next chunks, with returns that agree with the rewards.
    for session in (honest_actor, poisoner):
        reward = sent[session.session_id]
        chunk = cartpole_chunk(session.session_id, core.incarnation, version=core.version)
        chunk.seq = 1
        chunk.trajectories[0].terminated[0, 0] = True
        total = 4 * reward + 1
        chunk.episodes = [Episode(total, 5, (total,))]
        assert core.accept(session, chunk)
    batch = core.take_batch()
    assert batch is not None
    core.train_now(batch)
    assert core.guard.rolled_back == 1
    assert list(core.stats.returns) == [5.0]  # the honest actor's episode alone


def test_a_snapshot_is_a_deep_copy_that_later_updates_cannot_change() -> None:
    from collections import namedtuple

    import numpy as np
    import torch

    from fleetmind.runtime.learner.guard import snapshot_state

    pair = namedtuple("pair", "a b")
    state = {
        "net": {"w": torch.ones(3), "step": 4},
        "adam": [np.zeros(2), (np.ones(1), "x")],
        "extra": pair(np.zeros(1), 2.0),
        "none": None,
    }
    copy = snapshot_state(state)
    state["net"]["w"].add_(1.0)
    state["adam"][0][:] = 5.0
    state["adam"][1][0][:] = 7.0
    state["extra"].a[:] = 9.0
    assert torch.equal(copy["net"]["w"], torch.ones(3))
    assert copy["net"]["step"] == 4
    assert np.array_equal(copy["adam"][0], np.zeros(2))
    assert np.array_equal(copy["adam"][1][0], np.ones(1))
    assert copy["adam"][1][1] == "x"
    assert isinstance(copy["adam"][1], tuple)
    assert isinstance(copy["extra"], pair)
    assert np.array_equal(copy["extra"].a, np.zeros(1))
    assert copy["none"] is None


def test_one_process_trusts_its_own_data_and_stops_at_the_first_divergence(
    tmp_path: Path,
) -> None:
    """No copy of the state before each update: a diverged update stops the run."""
    run = local_run(tmp_path, steps=10**6)
    calls = poisoning(run, lambda n: n == 2)
    with pytest.raises(DivergedError, match="value_loss is nan at update 2; lower the learning"):
        train_in_process(run, envs=2)
    assert len(calls) == 3
    assert run.core.guard.rolled_back == 0
