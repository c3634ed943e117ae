"""The local launcher: this process serves the learner, N child processes act.

``fleetmind train ENV --actors N`` calls :func:`train_distributed`. The learner
listens on a ``unix:`` socket in a private temporary directory; each actor is a
``python -m fleetmind actor`` child with ``--envs / N`` environment copies (so an
update sees the same ``T x E`` batch as the single-process path). The actors are an
:class:`~fleetmind.runtime.launch.actor_pool.ActorPool`: a child that dies unexpectedly is
restarted and registers again, and the first ones start as forks of the launcher
before the learner builds its server. With ``--learners L`` > 1 the learners are
child processes too (:mod:`fleetmind.runtime.launch.learner_pool`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fleetmind.config import config_from_mapping, config_to_dict
from fleetmind.rpc.server import ServerConfig
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import DistConfig, check_dist
from fleetmind.runtime.launch.actor_pool import ActorPool
from fleetmind.runtime.launch.learner_pool import run_learner_group
from fleetmind.runtime.learner.run import run_learner
from fleetmind.runtime.learner.run_setup import RunSetup
from fleetmind.runtime.local import prepare_new, prepare_resume
from fleetmind.runtime.result import TrainResult


def train_distributed(
    config: TrainConfig,
    algo_config: Any,
    dist: DistConfig,
    *,
    force: bool = False,
    progress: bool | None = None,
) -> TrainResult:
    """Train with a learner here and ``dist.actors`` actor processes."""
    check_dist(config.algo, dist)
    extra = {"distributed": config_to_dict(dist)}
    config, spec, algo_cfg, run_dir, full = prepare_new(
        config, algo_config, force=force, extra=extra
    )
    setup = RunSetup(config, spec, algo_cfg, run_dir, full)
    return _launch(setup, dist, progress)


def resume_distributed(
    path: Path,
    overrides: dict[str, Any],
    dist_overrides: dict[str, Any],
    progress: bool | None = None,
) -> TrainResult:
    """Continue a run from its latest checkpoint with a fresh learner and actors."""
    overrides = {k: v for k, v in overrides.items() if not (k == "env_id" and v is None)}
    config, spec, algo_cfg, run_dir, full, state = prepare_resume(path, overrides)
    saved = dict(full.get("distributed", {}))
    saved.update(dist_overrides)
    dist = config_from_mapping(DistConfig, saved, "distributed")
    full["distributed"] = config_to_dict(dist)
    return _launch(RunSetup(config, spec, algo_cfg, run_dir, full, state), dist, progress)


def _launch(setup: RunSetup, dist: DistConfig, progress: bool | None) -> TrainResult:
    check_dist(setup.spec.name, dist)
    envs_per_actor = max(1, setup.config.envs // max(dist.actors, 1))
    sock_dir = tempfile.mkdtemp(prefix="fleetmind-")
    pool = ActorPool(dist.actors, envs_per_actor, setup.run_dir.path / "actors")
    try:
        if dist.learners > 1:
            return run_learner_group(setup.run_dir.path, dist.learners, Path(sock_dir), pool)
        address = f"unix:{sock_dir}/learner.sock"
        pool.start(address, fork=True)  # they register once the learner listens
        return run_learner(setup, dist, address, ServerConfig(reflection=False), progress)
    finally:
        pool.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
