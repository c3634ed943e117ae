"""A real learner service on a real port, run in a background thread for tests."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np

from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.core.batch import Trajectory
from fleetmind.core.exchange import Chunk, Episode
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.rpc.server import ServerConfig
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import DistConfig
from fleetmind.runtime.learner.run import LearnerRun
from fleetmind.runtime.learner.run_setup import RunSetup
from fleetmind.runtime.local import prepare_new
from fleetmind.runtime.result import TrainResult

ROLLOUT = 4


class LearnerThread:
    """Serves a learner until :meth:`stop`: a CartPole PPO (or IMPALA) one by default."""

    def __init__(
        self,
        run_dir: Path,
        server_config: ServerConfig | None = None,
        dist: DistConfig | None = None,
        steps: int = 10**9,
        algo: Any = None,
        run: LearnerRun | None = None,
    ) -> None:
        if run is None:
            config = TrainConfig(
                env_id="CartPole-v1", run_dir=run_dir, steps=steps, envs=2, log_interval_s=0.5
            )
            if algo is None:
                algo = PPOConfig(rollout_steps=ROLLOUT, update_epochs=1, minibatch_size=8)
            else:
                config.algo = "impala"
            setup = RunSetup(*prepare_new(config, algo))
            run = LearnerRun(setup, dist or DistConfig(), progress=False)
        self.run = run
        self.server_config = server_config or ServerConfig(reflection=False)
        self.address = ""
        self.result: TrainResult | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bound = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _on_bound(self, address: str) -> None:
        self.address = address
        self._loop = asyncio.get_running_loop()
        self._bound.set()

    def _main(self) -> None:
        self.result = asyncio.run(self.run.serve("127.0.0.1:0", self.server_config, self._on_bound))

    def __enter__(self) -> LearnerThread:
        self._thread.start()
        if not self._bound.wait(60):
            raise RuntimeError("learner did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.run.stop.set)
        self._thread.join(30)


def trajectory(envs: int = 2, steps: int = ROLLOUT, version: int = 0) -> Trajectory:
    """A well-formed CartPole trajectory."""
    rng = np.random.default_rng(0)
    lead = (steps, envs)
    return Trajectory(
        obs=rng.standard_normal((*lead, 4)).astype(np.float32),
        actions=rng.integers(0, 2, lead).astype(np.int64),
        log_probs=np.full(lead, -0.69, np.float32),
        values=np.zeros(lead, np.float32),
        rewards=np.ones(lead, np.float32),
        terminated=np.zeros(lead, bool),
        truncated=np.zeros(lead, bool),
        valid=np.ones(lead, bool),
        next_values=np.zeros(lead, np.float32),
        policy_version=version,
    )


def cartpole_chunk(
    session_id: str = "",
    incarnation: int = 0,
    *,
    secret: str = "",
    envs: int = 2,
    version: int = 0,
    obs_stats: RunningMeanStd | None = None,
    episodes: tuple[Episode, ...] = (),
    times: dict[str, float] | None = None,
) -> Chunk:
    """A well-formed single-agent CartPole chunk (a team of one) for a session
    (``secret``: the session's, as its Register returned it)."""
    return Chunk(
        [trajectory(envs=envs, version=version)],
        None,
        obs_stats,
        list(episodes),
        dict(times or {}),
        session_id,
        incarnation,
        secret,
    )
