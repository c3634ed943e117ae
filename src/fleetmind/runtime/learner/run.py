"""Run a learner service: serve actors, update, report, checkpoint, finish.

``run_learner`` follows the same template as the single-process trainer::

    while env_steps < budget and not solved and not stopped:
        batch = await core.next_batch()       # from the actors, over gRPC
        metrics = await core.train_on(batch)  # "learn"; version += 1; weights published once
        report every log_interval_s; checkpoint every checkpoint_interval_s
    final checkpoint, summary.json, curve.png; actors are told ``done``

With a :class:`~fleetmind.runtime.learner.collective.LearnerGroup` every learner runs this
loop over its own actors; updates are shared (gradients averaged), versions move
in lockstep, the group stops together, and rank 0 alone writes the run directory.
If a learner of the group dies, the others' next collective fails: rank 0 rolls
back to the last complete update, writes a final checkpoint, and every learner
exits with ``UnavailableError``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fleetmind.algos.team.base import is_multiagent_algo
from fleetmind.core.errors import ConfigError, DivergedError, UnavailableError
from fleetmind.nn.threads import limit_threads
from fleetmind.rpc.server import HealthServicer, ServerConfig, create_server, mark_serving
from fleetmind.rpc.training_codec import BUSY_STAGES, STAGES
from fleetmind.runtime.dist_config import DistConfig
from fleetmind.runtime.learner.chunk_format import chunk_format
from fleetmind.runtime.learner.collective import LearnerGroup
from fleetmind.runtime.learner.core import LearnerCore
from fleetmind.runtime.learner.run_setup import RunSetup
from fleetmind.runtime.learner.service import SERVICE, LearnerServicer
from fleetmind.runtime.learner.weight_store import WeightStore
from fleetmind.runtime.metrics import PrometheusExporter
from fleetmind.runtime.parts import broadcast_module, build_parts
from fleetmind.runtime.progress import Progress
from fleetmind.runtime.run_dir import SUMMARY, MetricsLog, plot_curve
from fleetmind.runtime.state import checkpoint_state, restore_run
from fleetmind.runtime.trainer import TrainResult

log = logging.getLogger("fleetmind.learner")

ACTIVE_S = 2.5
"""A session that called within this many seconds is still active (heartbeats are 1 s)."""
DONE_GRACE_S = 10.0
"""After finishing, answer ``done`` until every actor heard it, at most this long."""


def build_core(
    setup: RunSetup, dist: DistConfig, group: LearnerGroup | None = None
) -> tuple[LearnerCore, dict[str, Any]]:
    """The learner (a single agent's or a team's), its statistics and weight store;
    restored when resuming."""
    cfg = setup.config
    spec = setup.spec
    if is_multiagent_algo(spec) and dist.mode != "sync":
        raise ConfigError(
            f"--algo {spec.name} trains on-policy: use --mode sync with --actors (not {dist.mode})"
        )
    limit_threads(cfg.torch_threads)
    parts = build_parts(
        cfg.env_id, spec, setup.algo_config, envs=1, seed=cfg.seed,
        normalize_obs=cfg.normalize_obs,
    )  # fmt: skip
    parts.env.close()  # the learner only needs the spaces; actors step the envs
    learner = parts.learner
    learner.total_env_steps = cfg.steps
    try:
        module = broadcast_module(learner)
    except ConfigError as exc:
        raise ConfigError(f"{spec.name} has no network to broadcast; use ppo or impala") from exc
    chunks = chunk_format(parts, spec.rollout_length(setup.algo_config))
    core = LearnerCore(learner, module, dist, cfg.env_id, chunks, WeightStore())
    full = {**setup.full_config, **parts.space_config()}
    extra: dict[str, Any] = {}
    if setup.state is not None:
        extra = restore_run(setup.state, learner, core.run_data())
        core.env_steps = int(setup.state["env_steps"])
    if group is not None:
        attach_group(core, group, spec.name)
    core.publish()
    return core, {"full": full, "extra": extra}


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


class LearnerRun:
    """The loop of one learner process."""

    def __init__(
        self,
        setup: RunSetup,
        dist: DistConfig,
        progress: bool | None,
        group: LearnerGroup | None = None,
    ) -> None:
        self.setup = setup
        self.dist = dist
        self.writes = group is None or group.rank == 0
        """Rank 0 (or a lone learner) writes the run directory; the others only learn."""
        self.core, info = self.build(setup, dist, group)
        self.full = info["full"]
        self.wall_offset = float(info["extra"].get("wall_time_s", 0.0))
        self.progress_enabled = progress if self.writes else False
        self.solved_at: tuple[int, float] | None = None
        self.stop = asyncio.Event()
        self.stop_reason: str | None = None
        self.exporter = PrometheusExporter(dist.metrics_port) if dist.metrics_port else None
        self.started = time.monotonic()

    def build(
        self, setup: RunSetup, dist: DistConfig, group: LearnerGroup | None = None
    ) -> tuple[LearnerCore, dict[str, Any]]:
        """The learner core and its run information (:func:`build_core`)."""
        return build_core(setup, dist, group)

    def _stop(self, name: str) -> None:
        self.stop_reason = name
        log.warning("%s received: saving a final checkpoint and stopping", name)
        self.stop.set()

    async def serve(
        self, listen: str, server_config: ServerConfig, on_bound: Callable[[str], None] | None
    ) -> TrainResult:
        """Serve on ``listen`` and train until done; ``on_bound(address)`` once listening."""
        core = self.core
        servicer = LearnerServicer(
            core,
            self.setup.spec.name,
            self.full.get(self.setup.spec.name, {}),
            {k: v for k, v in self.full.items() if not k.startswith("_")},
        )
        health = HealthServicer()
        server, port = create_server(listen, server_config, [(servicer, SERVICE)], health)
        await server.start()
        await mark_serving(health, ("", SERVICE.full_name))
        address = listen if listen.startswith("unix:") else f"{listen.rpartition(':')[0]}:{port}"
        log.info("learner listening on %s (incarnation %d)", address, core.incarnation)
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._stop, signal.Signals(sig).name)
        if on_bound is not None:
            on_bound(address)
        try:
            result = await self._train()
            await self._linger()
        finally:
            await health.enter_graceful_shutdown()
            await server.stop(grace=1.0)
            if self.exporter is not None:
                self.exporter.close()
        return result

    async def _linger(self) -> None:
        """Answer ``done`` until every active actor heard it (they beat every second)."""
        deadline = time.monotonic() + DONE_GRACE_S
        while time.monotonic() < deadline:
            now = time.monotonic()
            if not any(now - s.last_seen < ACTIVE_S for s in self.core.sessions.values()):
                return
            await asyncio.sleep(0.1)

    async def _train(self) -> TrainResult:
        cfg = self.setup.config
        core = self.core
        metrics_log: MetricsLog | None = None
        if self.writes:
            self.setup.run_dir.remove_stale_temp_files()  # a killed writer's, before any save
            metrics_log = MetricsLog(self.setup.run_dir.path)
        progress = Progress(cfg.steps, core.env_steps, self.progress_enabled)
        t0 = self.started = time.monotonic()
        last = {"report": t0, "ckpt": t0, "steps": core.env_steps}
        metrics: dict[str, float] = {}
        try:
            while core.env_steps < cfg.steps and self.solved_at is None:
                batch = await core.next_batch(self.stop)
                if batch is None:
                    break
                new = await self._learn(batch)
                if core.group_stop:
                    self.stop_reason = self.stop_reason or "a stop of the learner group"
                    break
                if not new:
                    continue  # a shared update in which no learner had data
                metrics = new
                _check_finite(metrics, core)
                now = time.monotonic()
                self._check_target(now - t0)
                if now - last["report"] >= cfg.log_interval_s or self.solved_at is not None:
                    record = self._record(metrics, now - t0, last)
                    if metrics_log is not None:
                        metrics_log.write(record)
                    progress.update(core.env_steps, record)
                if now - last["ckpt"] >= cfg.checkpoint_interval_s and self.writes:
                    self._checkpoint(now - t0)
                    last["ckpt"] = now
            core.finish()
            self._log_final()
            elapsed = time.monotonic() - t0
            if metrics_log is not None:
                metrics_log.write(self._record(metrics, elapsed, last))
            if self.writes:
                self._checkpoint(elapsed)
            result = self._result(elapsed)
        finally:
            core.finish()
            progress.close()
            if metrics_log is not None:
                metrics_log.close()
        if not self.writes:
            return result
        self.setup.run_dir.write_json(SUMMARY, result.__dict__)
        # In a thread: the server keeps answering, so every actor hears ``done``.
        title = f"{cfg.env_id} ({cfg.algo}, distributed)"
        await asyncio.to_thread(plot_curve, self.setup.run_dir.path, title)
        return result

    def _log_final(self) -> None:
        latest = self.core.store.latest()
        group = self.core.group
        stats = self.core.chunks.join()
        digest = "-"
        if stats is not None:
            raw = np.concatenate([stats.mean.ravel(), stats.var.ravel(), [stats.count]])
            digest = hashlib.sha256(raw.astype(np.float64).tobytes()).hexdigest()
        log.info(
            "learner %d of %d finished at version %d; weights sha256 %s; obs stats sha256 %s",
            group.rank if group is not None else 0,
            group.world_size if group is not None else 1,
            self.core.version,
            latest.sha256 if latest is not None else "-",
            digest,
        )

    async def _learn(self, batch: Any) -> dict[str, float]:
        """One update; when the group breaks, rank 0 saves the last complete update."""
        core = self.core
        if core.group is None:
            return await core.train_on(batch, self.stop.is_set())
        before = copy.deepcopy(core.learner.state_dict()) if self.writes else None
        try:
            return await core.train_on(batch, self.stop.is_set())
        except UnavailableError:
            if before is not None:
                core.learner.load_state_dict(before)
                self._checkpoint(time.monotonic() - self.started)
                log.error("learner group broken: final checkpoint at version %d", core.version)
            raise

    def _check_target(self, elapsed: float) -> None:
        target = self.setup.config.target_return
        mean = self.core.stats.full_window_mean()
        if target is not None and self.solved_at is None and mean is not None and mean >= target:
            self.solved_at = (self.core.env_steps, self.wall_offset + elapsed)
            log.info("target return %.1f reached at %d env steps", target, self.core.env_steps)

    def _record(
        self, metrics: dict[str, float], elapsed: float, last: dict[str, float]
    ) -> dict[str, Any]:
        core = self.core
        now = time.monotonic()
        rate = (core.env_steps - last["steps"]) / max(now - last["report"], 1e-9)
        last["report"], last["steps"] = now, core.env_steps
        mean = core.stats.mean_return()
        totals = core.stage_totals
        actor_time = sum(totals[stage] for stage in BUSY_STAGES)
        record: dict[str, Any] = {
            "env_steps": core.env_steps,
            "wall_time_s": round(self.wall_offset + elapsed, 3),
            "episodes": core.stats.episodes,
            "episode_return_mean": None if math.isnan(mean) else mean,
            "episode_length_mean": float(np.mean(core.stats.lengths))
            if core.stats.lengths
            else None,
            "steps_per_s": rate,
            "version": core.version,
            "updates_per_s": core.version / max(elapsed, 1e-9),
            "actors_live": len(core.sessions),
            "queue_depth": core.queue_depth,
            "dropped_chunks": core.dropped_chunks,
            "time_learn_s": round(core.timings["learn"], 3),
            "time_wait_s": round(core.timings["wait"], 3),
            "time_exchange_s": round(core.timings["exchange"], 3),
            "rpc_share": totals["rpc"] / actor_time if actor_time > 0 else None,
        }
        for stage in STAGES:
            record[f"time_actor_{stage}_s"] = round(totals[stage], 3)
        if core.group is not None:
            record["time_allreduce_s"] = round(core.group.seconds["gradients"], 4)
            record["allreduce_calls"] = core.group.gradient_calls
        for session in core.sessions.values():
            record[f"actor_{session.actor_id}_steps_per_s"] = session.steps_per_s(now)
        record.update({k: float(v) for k, v in metrics.items()})
        for agent, agent_mean in core.agent_returns.means().items():
            record[f"return_mean/{agent}"] = agent_mean
        if self.exporter is not None:
            self.exporter.update(record)
        return record

    def _checkpoint(self, elapsed: float) -> None:
        state = checkpoint_state(
            self.setup.config,
            self.full,
            self.core.learner,
            self.core.run_data(),
            self.wall_offset + elapsed,
        )
        self.setup.run_dir.checkpoints.save(state)

    def _result(self, elapsed: float) -> TrainResult:
        core = self.core
        mean = core.stats.mean_return()
        return TrainResult(
            run_dir=str(self.setup.run_dir.path),
            solved=self.solved_at is not None,
            solved_at_env_steps=self.solved_at[0] if self.solved_at else None,
            solved_at_wall_time_s=round(self.solved_at[1], 3) if self.solved_at else None,
            env_steps=core.env_steps,
            wall_time_s=round(self.wall_offset + elapsed, 3),
            episodes=core.stats.episodes,
            episode_return_mean=None if math.isnan(mean) else mean,
            interrupted=self.stop_reason is not None,
        )


def _check_finite(metrics: dict[str, float], core: LearnerCore) -> None:
    for key in ("policy_loss", "value_loss", "loss"):
        if key in metrics and not math.isfinite(metrics[key]):
            raise DivergedError(
                f"training diverged: {key} is {metrics[key]} at update {core.version}; lower "
                "the learning rate or check the rewards"
            )


def run_learner(
    setup: RunSetup,
    dist: DistConfig,
    listen: str,
    server_config: ServerConfig,
    progress: bool | None = None,
    on_bound: Callable[[str], None] | None = None,
    group: LearnerGroup | None = None,
) -> TrainResult:
    """Build the learner and serve it until training ends (blocking)."""
    run = LearnerRun(setup, dist, progress, group)
    return asyncio.run(run.serve(listen, server_config, on_bound))
