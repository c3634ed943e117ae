"""Training messages <-> domain types: trajectory chunks and normaliser statistics.

Everything an actor sends is checked here before the learner touches it: names,
datatypes and shapes of every tensor against the ``[T x E]`` contract, finite
numbers, action ranges, and lengths that agree. A bad chunk raises
:class:`InvalidInputError` (``INVALID_ARGUMENT``) with a message that says what
to fix; it never reaches the learner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import InvalidInputError, echo
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.core.spaces import SpaceSpec
from fleetmind.rpc.codec import decode_tensor, encode_tensor
from fleetmind.rpc.generated import training_pb2 as pb

MAX_ENVS_PER_CHUNK = 65_536
"""Upper bound on ``E`` in one chunk (the message-size limit usually binds first)."""

_FLOAT_FIELDS = ("log_probs", "values", "rewards", "next_values")
_BOOL_FIELDS = ("terminated", "truncated", "valid")
TRAJECTORY_FIELDS = ("obs", "actions", *_FLOAT_FIELDS, *_BOOL_FIELDS)
"""Names of the tensors every chunk carries."""
DECISION_FIELD = "decision"
"""The optional ``[T x E]`` BOOL tensor of the steps whose action was a real choice."""
BUSY_STAGES = ("env", "inference", "rpc")
"""Stages of an actor's loop that add up to its busy time."""
STAGES = (*BUSY_STAGES, "push", "wait")
"""Every stage an actor reports: busy ones, its sender thread's push calls (overlapping
the loop) and the loop's wait for the next version."""


def tensor_pb(array: np.ndarray, name: str) -> pb.Tensor:
    """One protobuf tensor from a numpy array."""
    datatype, shape, raw = encode_tensor(array, name)
    return pb.Tensor(name=name, datatype=datatype, shape=shape, raw=raw)


def tensor_np(tensor: pb.Tensor, name: str | None = None) -> np.ndarray:
    """The read-only numpy view of a protobuf tensor."""
    return decode_tensor(tensor.raw, tensor.datatype, tensor.shape, name or tensor.name)


def stats_pb(stats: RunningMeanStd) -> pb.NormStats:
    """Normaliser statistics as a message (float64 mean and variance)."""
    return pb.NormStats(
        mean=tensor_pb(np.asarray(stats.mean, np.float64), "mean"),
        var=tensor_pb(np.asarray(stats.var, np.float64), "var"),
        count=float(stats.count),
    )


def stats_np(msg: pb.NormStats, shape: tuple[int, ...], where: str) -> RunningMeanStd:
    """Checked statistics from a message: shape, finiteness, non-negative var and count."""
    mean = np.array(tensor_np(msg.mean, f"{where}.mean"), dtype=np.float64)
    var = np.array(tensor_np(msg.var, f"{where}.var"), dtype=np.float64)
    if mean.shape != shape or var.shape != shape:
        raise InvalidInputError(
            f"{where}: mean {list(mean.shape)} and var {list(var.shape)} must both have the "
            f"observation shape {list(shape)}"
        )
    count = float(msg.count)
    finite = np.all(np.isfinite(mean)) and np.all(np.isfinite(var)) and np.isfinite(count)
    if not finite or np.any(var < 0) or count < 0:
        raise InvalidInputError(f"{where}: statistics must be finite with var >= 0, count >= 0")
    return RunningMeanStd(shape, mean, var, count)


@dataclass
class Chunk:
    """A checked trajectory chunk (a single agent's, or a team's) with what came along."""

    trajectory: Trajectory
    """The ``[T x E]`` data, arrays owned (writable)."""
    obs_stats: RunningMeanStd | None
    """Statistics of the raw observations the actor saw for this chunk."""
    episode_returns: list[float] = field(default_factory=list)
    """Returns of episodes that finished in this chunk."""
    episode_lengths: list[int] = field(default_factory=list)
    """Their lengths."""
    times: dict[str, float] = field(default_factory=dict)
    """Actor seconds per stage (:data:`STAGES`) since its previous chunk."""
    session_id: str = ""
    """Session of the actor that sent it."""
    agents: list[Trajectory] = field(default_factory=list)
    """A team chunk: every agent's ``[T x E]`` trajectory (``trajectory`` is agent 0's,
    which carries the policy version and the joint-step count); empty otherwise."""
    agent_returns: list[list[float]] = field(default_factory=list)
    """A team chunk: every agent's return, per finished episode."""


def chunk_pb(
    trajectory: Trajectory,
    session_id: str,
    incarnation: int,
    obs_stats: RunningMeanStd | None,
    episodes: Sequence[tuple[float, int]] = (),
    times: dict[str, float] | None = None,
) -> pb.TrajectoryChunk:
    """The message an actor sends for one trajectory."""
    names = list(TRAJECTORY_FIELDS)
    if trajectory.decision is not None:
        names.append(DECISION_FIELD)
    msg = pb.TrajectoryChunk(
        session_id=session_id,
        incarnation=incarnation,
        policy_version=trajectory.policy_version,
        num_steps=trajectory.num_steps,
        num_envs=trajectory.num_envs,
        tensors=[tensor_pb(getattr(trajectory, n), n) for n in names],
        episode_returns=[r for r, _ in episodes],
        episode_lengths=[n for _, n in episodes],
        times=pb.StageTimes(**(times or {})),
        env_steps=trajectory.num_steps * trajectory.num_envs,
    )
    if obs_stats is not None:
        msg.obs_stats.CopyFrom(stats_pb(obs_stats))
    return msg


def _expected(
    name: str, steps: int, envs: int, obs: SpaceSpec, act: SpaceSpec
) -> tuple[str, tuple[int, ...]]:
    lead = (steps, envs)
    if name == "obs":
        return "FP32", lead + tuple(obs.shape)
    if name == "actions":
        if act.kind == "discrete":
            return "INT64", lead
        return "FP32", (*lead, act.flat_dim)
    return ("BOOL" if name in _BOOL_FIELDS else "FP32"), lead


def decode_tensors(
    msg: pb.TrajectoryChunk,
    wanted: dict[str, tuple[str, tuple[int, ...]]],
    what: str,
    context: str,
) -> dict[str, np.ndarray]:
    """The chunk's tensors as writable arrays: exactly the names of ``wanted``, each
    once, with its ``(datatype, shape)``; InvalidInputError naming the first that is
    not (``what`` names the chunk kind, ``context`` the sizes the shapes follow from)."""
    given = {t.name: t for t in msg.tensors}
    if len(given) != len(msg.tensors) or set(given) != set(wanted):
        raise InvalidInputError(
            f"{what} tensors {echo([t.name for t in msg.tensors])} must be exactly "
            f"{list(wanted)}, each once"
        )
    arrays: dict[str, np.ndarray] = {}
    for name, (datatype, shape) in wanted.items():
        tensor = given[name]
        if tensor.datatype != datatype or tuple(tensor.shape) != shape:
            given_type = echo(tensor.datatype, bare=True) + echo(list(tensor.shape))
            raise InvalidInputError(
                f"tensor {name!r} is {given_type}; expected {datatype}{list(shape)} for {context}"
            )
        arrays[name] = np.array(tensor_np(tensor, name))
    return arrays


def chunk_from_pb(
    msg: pb.TrajectoryChunk, rollout_steps: int, obs: SpaceSpec, act: SpaceSpec
) -> Chunk:
    """Check a received chunk against the contract and convert it."""
    if msg.num_agents:
        raise InvalidInputError(
            f"num_agents={msg.num_agents} marks a team chunk but this learner trains a single "
            "agent; point the actor at a multi-agent learner"
        )
    steps, envs = int(msg.num_steps), int(msg.num_envs)
    if steps != rollout_steps:
        raise InvalidInputError(f"num_steps={steps} but this learner trains on T={rollout_steps}")
    if not 0 < envs <= MAX_ENVS_PER_CHUNK:
        raise InvalidInputError(f"num_envs={envs} must lie in 1..{MAX_ENVS_PER_CHUNK}")
    wanted = {name: _expected(name, steps, envs, obs, act) for name in TRAJECTORY_FIELDS}
    if any(t.name == DECISION_FIELD for t in msg.tensors):
        wanted[DECISION_FIELD] = ("BOOL", (steps, envs))
    arrays = decode_tensors(msg, wanted, "chunk", f"num_steps={steps}, num_envs={envs}")
    for name in ("obs", *_FLOAT_FIELDS):
        if not np.all(np.isfinite(arrays[name])):
            raise InvalidInputError(f"tensor {name!r} holds NaN or infinite values")
    if act.kind == "discrete" and arrays["actions"].size:
        low, high = int(arrays["actions"].min()), int(arrays["actions"].max())
        if low < 0 or high >= int(act.n or 0):
            raise InvalidInputError(f"actions must lie in [0, {act.n}); got {low}..{high}")
    if len(msg.episode_returns) != len(msg.episode_lengths):
        raise InvalidInputError(
            f"{len(msg.episode_returns)} episode returns but {len(msg.episode_lengths)} lengths"
        )
    if msg.env_steps != steps * envs:
        raise InvalidInputError(f"env_steps={msg.env_steps} disagrees with T*E={steps * envs}")
    returns = [float(r) for r in msg.episode_returns]
    if not all(np.isfinite(returns)):
        raise InvalidInputError("episode_returns hold NaN or infinite values")
    stats = None
    if msg.HasField("obs_stats"):
        stats = stats_np(msg.obs_stats, tuple(obs.shape), "obs_stats")
    times = stage_times(msg.times)
    trajectory = Trajectory(**arrays, policy_version=int(msg.policy_version))
    return Chunk(
        trajectory,
        stats,
        returns,
        [int(n) for n in msg.episode_lengths],
        times,
        msg.session_id,
    )


def stage_times(msg: pb.StageTimes) -> dict[str, float]:
    """An actor's seconds per stage; negative or non-finite values count as 0."""
    values = {k: float(getattr(msg, k)) for k in STAGES}
    return {k: v if np.isfinite(v) and v > 0 else 0.0 for k, v in values.items()}


def empty_trajectory(steps: int, observation: SpaceSpec, action: SpaceSpec) -> Trajectory:
    """A ``[T x 0]`` trajectory: what a learner without actors contributes to a shared update."""
    act_shape = () if action.kind == "discrete" else (action.flat_dim,)
    act_dtype = np.int64 if action.kind == "discrete" else np.float32
    floats = np.zeros((steps, 0), np.float32)
    flags = np.zeros((steps, 0), bool)
    return Trajectory(
        obs=np.zeros((steps, 0, observation.flat_dim), np.float32),
        actions=np.zeros((steps, 0, *act_shape), act_dtype),
        log_probs=floats,
        values=floats,
        rewards=floats,
        next_values=floats,
        terminated=flags,
        truncated=flags,
        valid=flags,
    )
