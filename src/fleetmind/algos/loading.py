"""Restore an agent from a run directory or checkpoint, for evaluation and serving.

loaded = load_agent("runs/cartpole")
action = loaded.agent.act(observation)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fleetmind.algos.actor_critic.network import BoxActuator
from fleetmind.algos.checkpoint import (
    LATEST,
    CheckpointStore,
    find_checkpoint_dir,
    load_file,
    read_spaces,
    stats_from_state,
)
from fleetmind.algos.registry import get_algorithm
from fleetmind.algos.team.base import MultiAgentAlgoSpec
from fleetmind.config import config_from_mapping
from fleetmind.core.agent import Actuator, Agent, Perceiver, identity
from fleetmind.core.errors import CheckpointError, PreconditionError
from fleetmind.core.normalizer import ObservationNormalizer
from fleetmind.core.spaces import SpaceSpec


@dataclass
class LoadedAgent:
    """An agent restored from a checkpoint, with what the checkpoint says about it."""

    agent: Agent
    """The agent (perceive -> decide -> act)."""
    name: str
    """Name of the run directory (the default model name when served)."""
    algo: str
    """Algorithm that trained it."""
    env_id: str
    """Environment it was trained on."""
    version: int
    """Policy version (updates applied)."""
    env_steps: int
    """Environment steps it was trained for."""
    observation_space: SpaceSpec
    """Raw observation space (what callers send)."""
    action_space: SpaceSpec
    """Environment action space (what the agent returns)."""
    checkpoint: Path
    """The checkpoint file it came from."""


def actuator_for(space: SpaceSpec) -> Actuator:
    """How policy actions become environment actions for ``space``."""
    return BoxActuator(space) if space.kind == "box" else identity


def _read_checkpoint(path: Path) -> tuple[dict[str, object], Path]:
    if path.is_file():
        manifest_path = path.parent / LATEST
        sha = None
        if manifest_path.is_file():
            data = json.loads(manifest_path.read_text())
            sha = data.get("sha256") if data.get("file") == path.name else None
        return load_file(path, sha), path
    store = CheckpointStore(find_checkpoint_dir(path))
    manifest = store.latest_manifest()
    return store.load_latest(), store.directory / str(manifest["file"])


def read_checkpoint(path: Path) -> tuple[dict[str, object], Path]:
    """The latest checkpoint of a run directory (or one checkpoint file) and its file."""
    return _read_checkpoint(path)


def load_agent(path: str | Path) -> LoadedAgent:
    """Load the latest checkpoint of a run directory (or one checkpoint file)."""
    path = Path(path)
    state, ckpt = _read_checkpoint(path)
    try:
        algo = str(state["algo"])
        config = json.loads(str(state["config"]))
        env_id = str(state.get("env_id", config.get("env_id", "")))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {ckpt} lacks its algorithm or config: {exc}") from exc
    spec = get_algorithm(algo)
    if isinstance(spec, MultiAgentAlgoSpec):
        raise PreconditionError(
            f"{path} holds a multi-agent team trained with {algo}; load it with "
            "fleetmind.load(path) or fleetmind.algos.team.loading.load_team(path)"
        )
    algo_cfg: object = config_from_mapping(spec.config_cls, config.get(algo, {}), algo)
    obs_space, act_space = read_spaces(state)
    learner = spec.build(algo_cfg, obs_space, act_space, 0)
    try:
        learner.load_state_dict(state["learner"])  # type: ignore[arg-type]
    except (KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {ckpt} does not fit its network: {exc}") from exc
    perceive: Perceiver = identity
    if "normalizer" in state:
        stats = stats_from_state(state["normalizer"], obs_space.shape)  # type: ignore[arg-type]
        perceive = ObservationNormalizer(stats)
    agent = Agent(
        learner.inference_policy(), obs_space, act_space, perceive, actuator_for(act_space)
    )
    run_name = path.name if path.is_dir() and path.name != "checkpoints" else path.parent.name
    return LoadedAgent(
        agent=agent,
        name=run_name,
        algo=algo,
        env_id=env_id,
        version=int(state.get("version", 0)),  # type: ignore[call-overload]
        env_steps=int(state.get("env_steps", 0)),  # type: ignore[call-overload]
        observation_space=obs_space,
        action_space=act_space,
        checkpoint=ckpt,
    )
