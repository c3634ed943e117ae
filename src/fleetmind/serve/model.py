"""One loaded model version: the agent, its tensor contract and its batcher.

The contract is what ModelMetadata reports and what ModelInfer checks: one input
``observation`` (FP32, ``[-1, *obs_shape]``) and the outputs ``action`` plus the
policy's ``output_specs`` (``action_probs`` or ``action_mean``/``action_log_std``,
``value``), their datatypes taken from a warm-up forward pass.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fleetmind.core.agent import Agent
from fleetmind.core.errors import CheckpointError
from fleetmind.rpc.codec import datatype_of, numpy_dtype
from fleetmind.serve.batcher import BatchObserver, BatchPolicy, DynamicBatcher, Forward
from fleetmind.serve.explain_process import ExplainProcess
from fleetmind.serve.explainer import ATTRIBUTIONS, ATTRIBUTIONS_DATATYPE, Explainer
from fleetmind.serve.response import ResponseEncoder

logger = logging.getLogger(__name__)

THREAD_FORWARD_S = 0.001
"""With ``in_thread`` unset, models whose one-row forward takes longer run on a thread."""

INPUT_NAME = "observation"
"""Name of the one input tensor of every served agent."""
INPUT_DATATYPE = "FP32"
"""Datatype of that input."""


@dataclass(frozen=True)
class TensorSpec:
    """Name, datatype and shape (``-1`` = any size) of one tensor."""

    name: str
    datatype: str
    shape: tuple[int, ...]


REPLY_RESERVE_BYTES = 64 * 1024
"""Room a reply keeps for everything but its output rows (names, shapes, request id)
when the row cap is derived from the message limit."""


@dataclass(frozen=True)
class RequestLimits:
    """What one request may ask of a model version."""

    max_message_bytes: int = 16 * 1024 * 1024
    """Largest reply the server may send (its message limit)."""
    max_request_rows: int | None = None
    """Most rows per request; ``None``: as many as fit ``max_message_bytes``."""


@dataclass
class LoadedModel:
    """What a loader returns for one checkpoint."""

    agent: Agent
    """The agent to serve."""
    version: str | None = None
    """Version to report (policy version); the folder name is used when ``None``."""
    platform: str = "fleetmind"
    """Reported in ModelMetadata (``fleetmind_ppo``...)."""
    members: dict[str, Agent] = field(default_factory=dict)
    """A team's agents by name, each also served as ``<model>.<agent>``
    (:mod:`fleetmind.serve.team`); empty for a single agent."""


def agent_forward(agent: Agent) -> Forward:
    """A batch forward of ``agent``: ``action`` plus every policy output, as numpy.

    Served parameters never change, so this is the agent's frozen decider (see
    :meth:`fleetmind.core.agent.Agent.frozen_decider`): rows reach it checked by
    :func:`fleetmind.serve.protocol.decode_observations`.
    """
    decide = agent.frozen_decider()

    def forward(rows: np.ndarray) -> dict[str, np.ndarray]:
        decision = decide(rows)
        return {"action": np.asarray(decision.actions), **decision.outputs}

    return forward


@dataclass
class ServedModel:
    """A model version that answers requests."""

    name: str
    version: str
    loaded: LoadedModel
    source: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batcher: DynamicBatcher
    max_rows: int = 1
    """Most observation rows one request may carry."""
    max_reply_bytes: int = 16 * 1024 * 1024
    """Largest reply this version may send."""
    explain_process: ExplainProcess | None = None
    """The server process's explainer process; ``None``: this version starts its own."""
    output_names: frozenset[str] = field(init=False)
    output_order: tuple[str, ...] = field(init=False)
    """Every output, in the order responses list them when none is asked for."""
    datatypes: dict[str, str] = field(init=False)
    """Datatype of every output a response may carry (``attributions`` included)."""
    encoder: ResponseEncoder = field(init=False)
    """Writes this version's responses."""
    explainer: Explainer = field(init=False)
    """Explains this version's decisions, for requests that ask."""

    def __post_init__(self) -> None:
        self.output_order = tuple(o.name for o in self.outputs)
        self.output_names = frozenset(self.output_order)
        self.datatypes = {o.name: o.datatype for o in self.outputs}
        self.datatypes.setdefault(ATTRIBUTIONS, ATTRIBUTIONS_DATATYPE)
        self.encoder = ResponseEncoder(self.name, self.version, self.datatypes)
        self.explainer = Explainer(self.loaded.agent, self.name, self.explain_process)

    async def close(self) -> None:
        """Drain the batcher, then drop this version from the explainer process."""
        await self.batcher.close()
        await self.explainer.close()

    @property
    def row_bytes(self) -> int:
        """Reply bytes per observation row, every output included."""
        return sum(_row_bytes(o) for o in self.outputs)

    @property
    def observation_shape(self) -> tuple[int, ...]:
        """Per-row shape of the observation input."""
        return self.loaded.agent.observation_space.shape


def _row_bytes(spec: TensorSpec) -> int:
    return int(numpy_dtype(spec.datatype).itemsize) * math.prod(spec.shape[1:])


def max_rows(outputs: tuple[TensorSpec, ...], limits: RequestLimits) -> int:
    """Most rows per request: the configured cap, but never more than a reply of every
    output can carry within the message limit."""
    per_row = max(1, sum(_row_bytes(o) for o in outputs))
    fitting = max(1, (limits.max_message_bytes - REPLY_RESERVE_BYTES) // per_row)
    if limits.max_request_rows is None:
        return fitting
    if limits.max_request_rows > fitting:
        logger.warning(
            "--max-request-rows %d: replies of more than %d rows would exceed the message "
            "limit; capping at %d",
            limits.max_request_rows,
            fitting,
            fitting,
        )
    return min(limits.max_request_rows, fitting)


def _forward_seconds(forward: Forward, obs_shape: tuple[int, ...], repeats: int = 5) -> float:
    """Median time of a one-row forward pass."""
    row = np.zeros((1, *obs_shape), dtype=np.float32)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(row)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def build_served_model(
    name: str,
    version: str,
    loaded: LoadedModel,
    source: Path,
    *,
    policy: BatchPolicy,
    observer: BatchObserver | None = None,
    limits: RequestLimits | None = None,
    explain_process: ExplainProcess | None = None,
) -> ServedModel:
    """Warm the model up on a zero batch and derive its tensor contract (blocking);
    ``explain_process`` computes its explanations (None: one of its own)."""
    agent = loaded.agent
    forward = agent_forward(agent)
    obs_shape = tuple(agent.observation_space.shape)
    try:
        sample = forward(np.zeros((2, *obs_shape), dtype=np.float32))
    except Exception as exc:
        raise CheckpointError(f"{source}: warm-up forward pass failed: {exc}") from exc
    outputs = []
    for out_name, value in sample.items():
        array = np.asarray(value)
        if array.ndim == 0 or array.shape[0] != 2:
            raise CheckpointError(f"{source}: output {out_name!r} is not batched ({array.shape})")
        shape = (-1, *array.shape[1:])
        outputs.append(TensorSpec(out_name, datatype_of(array.dtype, out_name), shape))
    inputs = (TensorSpec(INPUT_NAME, INPUT_DATATYPE, (-1, *obs_shape)),)
    if policy.in_thread is None:
        one_row = _forward_seconds(forward, obs_shape)
        policy = replace(policy, in_thread=one_row > THREAD_FORWARD_S)
        logger.info(
            "%s/%s: one-row forward %.3f ms -> forward passes %s",
            name,
            version,
            one_row * 1e3,
            "on a worker thread" if policy.in_thread else "inline on the event loop",
        )
    batcher = DynamicBatcher(forward, policy, observer)
    limits = limits or RequestLimits()
    return ServedModel(
        name,
        version,
        loaded,
        source,
        inputs,
        tuple(outputs),
        batcher,
        max_rows=max_rows(tuple(outputs), limits),
        max_reply_bytes=limits.max_message_bytes,
        explain_process=explain_process,
    )
