"""The learner core without a server: which chunks an update uses, whom a session answers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from tests.integration.learner_harness import ROLLOUT, trajectory

from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.core.errors import PermissionDeniedError
from fleetmind.core.exchange import Chunk
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import DistConfig
from fleetmind.runtime.learner.run import LearnerRun
from fleetmind.runtime.learner.run_setup import RunSetup
from fleetmind.runtime.local import prepare_new


def test_a_chunk_of_a_version_whose_update_runs_is_dropped(tmp_path: Path) -> None:
    config = TrainConfig(env_id="CartPole-v1", run_dir=tmp_path / "run", steps=10**6, envs=2)
    algo = PPOConfig(rollout_steps=ROLLOUT, update_epochs=1, minibatch_size=8)
    core = LearnerRun(RunSetup(*prepare_new(config, algo)), DistConfig(), progress=False).core
    first = core.register("a0", "CartPole-v1", 2)
    assert core.accept(first, Chunk([trajectory(version=0)]))
    batch = core._take_sync()  # the update of version 0 starts with this batch
    assert batch is not None
    assert len(batch.chunks) == 1
    # An actor that (re)registered meanwhile still holds version 0: its chunk comes too
    # late for this update and is older than the next one's version.
    late = core.register("a1", "CartPole-v1", 2)
    assert not core.accept(late, Chunk([trajectory(version=0)]))
    assert core.dropped_chunks == 1
    asyncio.run(core.train_on(batch))
    assert core.version == 1
    assert core.accept(late, Chunk([trajectory(version=1)], seq=1))  # its second chunk


def test_a_session_answers_only_to_its_own_secret(tmp_path: Path) -> None:
    config = TrainConfig(env_id="CartPole-v1", run_dir=tmp_path / "run", steps=10**6, envs=2)
    algo = PPOConfig(rollout_steps=ROLLOUT, update_epochs=1, minibatch_size=8)
    core = LearnerRun(RunSetup(*prepare_new(config, algo)), DistConfig(), progress=False).core
    real = core.register("a0", "CartPole-v1", 2)
    # The same actor id again is a second session; the first goes on.
    other = core.register("a0", "CartPole-v1", 1)
    assert set(core.sessions) == {real.session_id, other.session_id}
    assert len(real.secret) * 4 >= 128
    assert real.secret != other.secret
    seen = real.last_seen
    for wrong in ("", other.secret, real.secret[:-1], real.secret + "0", "\u00e9" * 32):
        with pytest.raises(PermissionDeniedError, match="session_secret"):
            core.touch(real.session_id, core.incarnation, wrong)
        core.end(real.session_id, wrong)  # only the holder can end it
    assert real.session_id in core.sessions
    assert real.last_seen == seen  # a refused call does not keep a session alive
    assert core.touch(real.session_id, core.incarnation, real.secret) is real
    core.end(real.session_id, real.secret)
    assert set(core.sessions) == {other.session_id}


def test_an_actor_that_left_holds_an_update_back_at_most_sync_timeout_s(tmp_path: Path) -> None:
    config = TrainConfig(env_id="CartPole-v1", run_dir=tmp_path / "run", steps=10**6, envs=2)
    algo = PPOConfig(rollout_steps=ROLLOUT, update_epochs=1, minibatch_size=8)
    dist = DistConfig(sync_timeout_s=0.5, actor_timeout_s=60.0)
    core = LearnerRun(RunSetup(*prepare_new(config, algo)), dist, progress=False).core
    stays = core.register("a0", "CartPole-v1", 2)
    core.register("a1", "CartPole-v1", 2)  # registered, then gone without a word
    assert core.accept(stays, Chunk([trajectory(version=0)]))
    t0 = time.monotonic()
    batch = asyncio.run(core.next_batch(asyncio.Event()))
    waited = time.monotonic() - t0
    assert batch is not None
    assert len(batch.chunks) == 1
    assert 0.45 <= waited < 0.5 + 1.0  # polled every 0.1 s; generous for a loaded machine
