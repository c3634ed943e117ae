"""Build a learner core for a prepared run: parts, learner, statistics, weight store.

::

    core, info = build_core(setup, dist)                   # actors in other processes
    core, info = build_core(setup, dist, local_envs=8)     # actors in this process
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from fleetmind.algos.checkpoint import decode_state, encode_state
from fleetmind.algos.team.base import is_multiagent_algo
from fleetmind.core.errors import ConfigError
from fleetmind.nn.threads import limit_threads
from fleetmind.runtime.chunk_format import chunk_format
from fleetmind.runtime.dist_config import ACTOR_ALGOS, DistConfig, check_mode
from fleetmind.runtime.learner.collective import LearnerGroup
from fleetmind.runtime.learner.core import LearnerCore
from fleetmind.runtime.learner.run_setup import RunSetup
from fleetmind.runtime.learner.weight_store import WeightStore
from fleetmind.runtime.parts import broadcast_module, build_parts
from fleetmind.runtime.state import restore_run

log = logging.getLogger("fleetmind.learner")


def build_core(
    setup: RunSetup,
    dist: DistConfig,
    group: LearnerGroup | None = None,
    *,
    local_envs: int | None = None,
) -> tuple[LearnerCore, dict[str, Any]]:
    """The learner (a single agent's or a team's), its statistics and weight store;
    restored when resuming.

    ``local_envs``: the actors run in this process and step the learner's own parts
    (returned as ``info["parts"]``, with ``local_envs`` env copies), so no version is
    published; otherwise the env is closed and versions go to a :class:`WeightStore`.
    """
    cfg = setup.config
    spec = setup.spec
    if group is not None:
        setup.state = rank_zero_state(setup.state, group)
    if is_multiagent_algo(spec) and local_envs is None:
        check_mode(spec.name, dist.mode)  # MAPPO/IPPO: sync only; team-impala: async only
    limit_threads(cfg.torch_threads)
    parts = build_parts(
        cfg.env_id, spec, setup.algo_config, envs=local_envs or 1, seed=cfg.seed,
        normalize_obs=cfg.normalize_obs,
    )  # fmt: skip
    learner = parts.learner
    learner.total_env_steps = cfg.steps
    module: Any = None
    store: WeightStore | None = None
    if local_envs is None:
        parts.env.close()  # the learner only needs the spaces; actors step the envs
        try:
            module = broadcast_module(learner)
        except ConfigError as exc:
            raise ConfigError(
                f"{spec.name} has no network to broadcast; use one of {', '.join(ACTOR_ALGOS)}"
            ) from exc
        store = WeightStore()
    chunks = chunk_format(parts, spec.rollout_length(setup.algo_config))
    core = LearnerCore(learner, module, dist, cfg.env_id, chunks, store, cfg.normalize_reward)
    full = {**setup.full_config, **parts.space_config()}
    extra: dict[str, Any] = {}
    if setup.state is not None:
        extra = restore_run(setup.state, learner, core.run_data())
        core.env_steps = int(setup.state["env_steps"])
    if group is not None:
        attach_group(core, group, spec.name)
    core.publish()
    return core, {"full": full, "extra": extra, "parts": parts}


def rank_zero_state(state: dict[str, Any] | None, group: LearnerGroup) -> dict[str, Any] | None:
    """The checkpoint every learner of ``group`` starts from: rank 0's, sent to the others.

    Rank 0 alone owns the run directory; the others may not see it at all (on
    Kubernetes each learner pod has a volume of its own, and only learner 0's holds
    the run), so a group that restarts resumes from whatever rank 0 resumes from.
    """
    payload = group.broadcast_bytes(encode_state(state) if state is not None else b"")
    if group.rank == 0:
        return state
    if not payload:
        return None
    shared = decode_state(payload, "learner 0's checkpoint")
    log.info("learner %d starts from learner 0's checkpoint at step %d", group.rank,
             int(shared["env_steps"]))  # fmt: skip
    return shared


def attach_group(core: LearnerCore, group: LearnerGroup, algo: str) -> None:
    """Share ``core``'s updates with the group; start from rank 0's parameters."""
    if not hasattr(core.learner, "reducer"):
        raise ConfigError(f"--algo {algo} cannot train with several learners; use ppo")
    versions = group.all_max(np.array([core.version, -core.version], dtype=np.float64))
    if versions[0] != -versions[1]:
        raise ConfigError(
            f"the learners start from different versions ({int(-versions[1])} to "
            f"{int(versions[0])}): every learner must resume from the same checkpoint"
        )
    group.broadcast_module(core.module)
    core.learner.reducer = group
    core.group = group
