"""Several learners as one: torch.distributed collectives under torchrun's conventions.

Each learner process reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``
and ``MASTER_PORT`` from its environment (``init_method="env://"``), the variables
``torchrun`` sets, so the same command runs under ``torchrun`` on several hosts or
under the local launcher, which sets them itself. The group uses ``gloo`` on the
CPU and ``nccl`` when CUDA is available::

    rank = RankInfo.from_env()              # None: a single learner
    group = LearnerGroup.join(rank, timeout_s)
    learner.reducer = group                 # gradients averaged before every step
    shared = group.share(steps, stop, obs_delta, episodes)   # once per update

A collective fails (``UnavailableError``) when a peer died or did not answer within
``timeout_s``; the learners then stop and the run resumes from its checkpoint.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn

from fleetmind.core.errors import ConfigError, UnavailableError
from fleetmind.core.normalizer import RunningMeanStd

log = logging.getLogger("fleetmind.collective")

REQUIRED = ("RANK", "MASTER_ADDR", "MASTER_PORT")
"""Variables a learner of a group of several needs besides ``WORLD_SIZE``."""


@dataclass(frozen=True)
class RankInfo:
    """Where this learner stands in its group (torchrun's environment variables)."""

    rank: int
    """``RANK``: 0 writes the run directory."""
    world_size: int
    """``WORLD_SIZE``: learners in the group."""
    local_rank: int
    """``LOCAL_RANK``: index on this host (picks the GPU with nccl)."""
    master_addr: str
    """``MASTER_ADDR``: host of rank 0's rendezvous store."""
    master_port: int
    """``MASTER_PORT``: its port."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RankInfo | None:
        """The rank of this process; None when ``WORLD_SIZE`` is unset or 1."""
        env = os.environ if environ is None else environ
        if not env.get("WORLD_SIZE"):
            given = [name for name in REQUIRED if env.get(name)]
            if given:  # a learner of a group that would otherwise write the run alone
                raise ConfigError(
                    f"{', '.join(given)} {_is_are(given)} set but WORLD_SIZE is not; start "
                    "the learners with torchrun (which sets WORLD_SIZE, RANK, LOCAL_RANK, "
                    "MASTER_ADDR and MASTER_PORT) or set them all yourself"
                )
        world = _int_var(env, "WORLD_SIZE", "1")
        if world < 1:
            raise ConfigError(f"WORLD_SIZE={world} must be at least 1")
        if world == 1:
            return None
        missing = [name for name in REQUIRED if not env.get(name)]
        if missing:
            raise ConfigError(
                f"WORLD_SIZE={world} starts one learner of a group, but {', '.join(missing)} "
                f"{_is_are(missing)} not set; start the learners with torchrun (which sets "
                "RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT) or set them yourself"
            )
        rank = _int_var(env, "RANK", "0")
        if not 0 <= rank < world:
            raise ConfigError(f"RANK={rank} must lie in [0, WORLD_SIZE={world})")
        port = _int_var(env, "MASTER_PORT", "0")
        if not 0 < port < 65536:
            raise ConfigError(f"MASTER_PORT={port} is not a port")
        return cls(rank, world, _int_var(env, "LOCAL_RANK", "0"), env["MASTER_ADDR"], port)


def listen_address(listen: str, rank: RankInfo | None) -> str:
    """``HOST:PORT`` moved to ``PORT + LOCAL_RANK``: several learners on one host under
    torchrun each get their own port (port 0 and ``unix:`` paths stay as given)."""
    if rank is None or rank.local_rank == 0 or listen.startswith("unix:"):
        return listen
    host, _, port = listen.rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return listen
    return f"{host}:{int(port) + rank.local_rank}"


def _is_are(names: list[str]) -> str:
    return "is" if len(names) == 1 else "are"


def _int_var(env: Mapping[str, str], name: str, default: str) -> int:
    raw = env.get(name, default) or default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be an integer") from None


@dataclass
class Shared:
    """What every learner learns from the others before an update (identical everywhere)."""

    env_steps: int
    """Environment steps of this update over all learners."""
    stop: bool
    """Some learner was asked to stop: all stop after this update."""
    episodes: list[tuple[float, int]]
    """Finished episodes of every learner's actors, rank by rank."""


class LearnerGroup:
    """This learner's membership of a torch.distributed process group."""

    def __init__(self, rank: RankInfo, device: torch.device) -> None:
        self.rank = rank.rank
        self.world_size = rank.world_size
        self.device = device
        self.seconds = {"gradients": 0.0, "exchange": 0.0}
        """Time spent in collectives: averaging gradients, and the per-update exchange
        (which includes waiting for the slowest learner)."""
        self.gradient_calls = 0
        """Gradient all-reduces so far."""

    @classmethod
    def join(cls, rank: RankInfo, timeout_s: float) -> LearnerGroup:
        """Rendezvous with the other learners (blocks until all ``WORLD_SIZE`` arrived)."""
        cuda = torch.cuda.is_available()
        backend = "nccl" if cuda else "gloo"
        device = torch.device(f"cuda:{rank.local_rank}" if cuda else "cpu")
        log.info(
            "learner %d of %d joins %s:%d (%s)",
            rank.rank,
            rank.world_size,
            rank.master_addr,
            rank.master_port,
            backend,
        )
        try:
            tdist.init_process_group(
                backend,
                init_method="env://",
                rank=rank.rank,
                world_size=rank.world_size,
                timeout=timedelta(seconds=timeout_s),
            )
        except (RuntimeError, ValueError) as exc:
            raise UnavailableError(
                f"learner {rank.rank} could not join the group at "
                f"{rank.master_addr}:{rank.master_port}: {exc}"
            ) from exc
        return cls(rank, device)

    def _run(
        self, what: str, tensor: torch.Tensor, op: str = "sum", kind: str = "exchange"
    ) -> torch.Tensor:
        t0 = time.monotonic()
        try:
            return self._collective(what, tensor, op)
        finally:
            self.seconds[kind] += time.monotonic() - t0

    def _collective(self, what: str, tensor: torch.Tensor, op: str) -> torch.Tensor:
        moved = tensor.to(self.device)
        try:
            if op == "gather":
                out = [torch.empty_like(moved) for _ in range(self.world_size)]
                tdist.all_gather(out, moved)
                return torch.stack(out).cpu()
            if op == "b0":
                tdist.broadcast(moved, src=0)
                return moved.cpu()
            reduce_op = {"sum": tdist.ReduceOp.SUM, "max": tdist.ReduceOp.MAX}[op]
            tdist.all_reduce(moved, op=reduce_op)
        except RuntimeError as exc:
            raise UnavailableError(
                f"learner group lost a member during {what}: {exc}; the run stops, continue "
                "it with --resume"
            ) from exc
        return moved.cpu()

    def all_reduce_sum(self, values: np.ndarray) -> np.ndarray:
        """Element-wise sum over every learner (the :class:`SumReducer` of the algorithms)."""
        array = np.array(values, copy=True, order="C")
        self.gradient_calls += 1
        summed = self._run("a gradient all-reduce", torch.from_numpy(array), kind="gradients")
        out: np.ndarray = summed.numpy()
        return out

    def all_max(self, values: np.ndarray) -> np.ndarray:
        """Element-wise maximum over every learner."""
        array = np.ascontiguousarray(values, dtype=np.float64)
        out: np.ndarray = self._run("a maximum", torch.from_numpy(array), "max").numpy()
        return out

    def all_gather_rows(self, rows: np.ndarray) -> list[np.ndarray]:
        """Every learner's ``[k_r, D]`` float64 rows (``k_r`` may differ), rank by rank."""
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        counts = self._run(
            "a row count", torch.tensor([rows.shape[0]], dtype=torch.float64), "gather"
        )
        counts_l = [int(c) for c in counts.reshape(-1).tolist()]
        padded = np.zeros((max(*counts_l, 1), rows.shape[1]), dtype=np.float64)
        padded[: rows.shape[0]] = rows
        gathered = self._run("a row gather", torch.from_numpy(padded), "gather").numpy()
        return [gathered[r, : counts_l[r]] for r in range(self.world_size)]

    def share(
        self,
        env_steps: int,
        stop: bool,
        obs_delta: RunningMeanStd | None,
        episodes: list[tuple[float, int]],
    ) -> tuple[Shared, list[RunningMeanStd]]:
        """Exchange what each learner saw since the last update: two collectives."""
        stats: list[float] = []
        if obs_delta is not None:
            stats = [obs_delta.count, *obs_delta.mean.ravel(), *obs_delta.var.ravel()]
        head = np.array([[float(env_steps), float(stop), *stats]], dtype=np.float64)
        heads = [r[0] for r in self.all_gather_rows(head)]
        eps = np.array(episodes, dtype=np.float64).reshape(-1, 2)
        per_rank = self.all_gather_rows(eps)
        deltas: list[RunningMeanStd] = []
        if obs_delta is not None:
            shape = obs_delta.shape
            size = int(np.prod(shape))
            for h in heads:
                mean = h[3 : 3 + size].reshape(shape)
                var = h[3 + size : 3 + 2 * size].reshape(shape)
                deltas.append(RunningMeanStd(shape, mean.copy(), var.copy(), float(h[2])))
        shared = Shared(
            env_steps=int(sum(round(float(h[0])) for h in heads)),
            stop=any(h[1] > 0 for h in heads),
            episodes=[(float(r), int(n)) for part in per_rank for r, n in part],
        )
        return shared, deltas

    def broadcast_bytes(self, payload: bytes) -> bytes:
        """Rank 0's ``payload`` on every learner (the others' own are ignored)."""
        size = self._run("a size broadcast", torch.tensor([len(payload)], dtype=torch.int64), "b0")
        if int(size[0]) == 0:
            return b""
        data = torch.zeros(int(size[0]), dtype=torch.uint8)
        if self.rank == 0:
            data = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
        return bytes(self._run("a broadcast", data, "b0").numpy().tobytes())

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers into every learner's ``module``."""
        with torch.no_grad():
            for name, tensor in module.state_dict().items():
                moved = tensor.to(self.device)
                try:
                    tdist.broadcast(moved, src=0)
                except RuntimeError as exc:
                    raise UnavailableError(f"broadcast of {name} failed: {exc}") from exc
                tensor.copy_(moved.cpu())

    def close(self) -> None:
        """Leave the group (idempotent)."""
        if tdist.is_initialized():
            tdist.destroy_process_group()
