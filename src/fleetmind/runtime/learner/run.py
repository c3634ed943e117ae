"""Run a learner service: serve actors, update, report, checkpoint, finish.

``run_learner`` follows the same template as the single-process trainer::

    while env_steps < budget and not solved and not stopped:
        batch = await core.next_batch()       # from the actors, over gRPC
        metrics = await core.train_on(batch)  # "learn"; version += 1; weights published once
        report every log_interval_s; checkpoint after the first update of a run that has
        none, then every checkpoint_interval_s
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
import hashlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fleetmind.core.errors import DivergedError, UnavailableError
from fleetmind.core.exchange import BUSY_STAGES, STAGES
from fleetmind.rpc.learner_service import SERVICE, LearnerServicer
from fleetmind.rpc.metrics_http import MetricsPageConfig
from fleetmind.rpc.server import HealthServicer, ServerConfig, create_server, mark_serving
from fleetmind.runtime.dist_config import DistConfig
from fleetmind.runtime.learner.build import build_core
from fleetmind.runtime.learner.collective import LearnerGroup
from fleetmind.runtime.learner.core import LearnerCore
from fleetmind.runtime.learner.endpoint import CoreEndpoint
from fleetmind.runtime.learner.guard import snapshot_state
from fleetmind.runtime.learner.run_setup import RunSetup
from fleetmind.runtime.metrics import PrometheusExporter, listen_host
from fleetmind.runtime.parts import RunParts
from fleetmind.runtime.progress import Progress
from fleetmind.runtime.result import TrainResult
from fleetmind.runtime.run_dir import SUMMARY, MetricsLog, plot_curve
from fleetmind.runtime.state import RunData, checkpoint_state

log = logging.getLogger("fleetmind.learner")

ACTIVE_S = 2.5
"""A session that called within this many seconds is still active (heartbeats are 1 s)."""
DONE_GRACE_S = 10.0
"""After finishing, answer ``done`` until every actor heard it, at most this long."""


class LearnerRun:
    """The loop of one learner: its actors in other processes, or in this one."""

    def __init__(
        self,
        setup: RunSetup,
        dist: DistConfig,
        progress: bool | None,
        group: LearnerGroup | None = None,
        *,
        local_envs: int | None = None,
        metrics_page: MetricsPageConfig | None = None,
    ) -> None:
        self.setup = setup
        self.dist = dist
        self.writes = group is None or group.rank == 0
        """Rank 0 (or a lone learner) writes the run directory; the others only learn."""
        self.core, info = build_core(setup, dist, group, local_envs=local_envs)
        self.parts: RunParts = info["parts"]
        """The run's parts (with live env copies when the actors run in this process)."""
        self.full = info["full"]
        self.wall_offset = float(info["extra"].get("wall_time_s", 0.0))
        self.progress_enabled = progress if self.writes else False
        self.solved_at: tuple[int, float] | None = None
        self.stop = asyncio.Event()
        self.stop_reason: str | None = None
        if metrics_page is None and dist.metrics_port:
            metrics_page = MetricsPageConfig(dist.metrics_port)
        self.exporter = PrometheusExporter(metrics_page) if metrics_page is not None else None
        """Serves ``metrics_page`` (default: ``dist.metrics_port`` on every interface)."""
        self.started = time.monotonic()
        self.run_data: Callable[[], RunData] = self.core.run_data
        """What a checkpoint records of the data side (actors in this process add their
        reward statistics)."""
        self._metrics_log: MetricsLog | None = None
        self._progress: Progress | None = None
        self._last = {"report": 0.0, "ckpt": 0.0, "steps": 0.0}
        self._metrics: dict[str, float] = {}
        self._first_checkpoint = False
        """No checkpoint yet: write one after the first update (a learner killed in its
        first minute then loses little)."""

    def endpoint(self, insecure: bool = False) -> CoreEndpoint:
        """The learner as transports serve it (``insecure``: open to the network)."""
        name = self.setup.spec.name
        train = {k: v for k, v in self.full.items() if not k.startswith("_")}
        return CoreEndpoint(self.core, name, self.full.get(name, {}), train, insecure)

    def request_stop(self, name: str) -> None:
        """Stop after the current update (a signal named ``name`` asked for it)."""
        self.stop_reason = name
        log.warning("%s received: saving a final checkpoint and stopping", name)
        self.stop.set()

    async def serve(
        self, listen: str, server_config: ServerConfig, on_bound: Callable[[str], None] | None
    ) -> TrainResult:
        """Serve on ``listen`` and train until done; ``on_bound(address)`` once listening."""
        core = self.core
        servicer = LearnerServicer(self.endpoint(server_config.open_at(listen)))
        health = HealthServicer()
        server, port = create_server(listen, server_config, [(servicer, SERVICE)], health)
        await server.start()
        await mark_serving(health, ("", SERVICE.full_name))
        address = listen if listen.startswith("unix:") else f"{listen.rpartition(':')[0]}:{port}"
        log.info("learner listening on %s (incarnation %d)", address, core.incarnation)
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_stop, signal.Signals(sig).name)
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
        core = self.core
        self.open()
        try:
            while not self.finished():
                batch = await core.next_batch(self.stop)
                if batch is None:
                    break
                new = await self._learn(batch)
                if core.group_stop:
                    self.stop_reason = self.stop_reason or "a stop of the learner group"
                    break
                if new:  # else: a shared update in which no learner had data
                    self.learned(new)
            result = self.wrap_up()
        finally:
            self.close()
        if self.writes:
            # In a thread: the server keeps answering, so every actor hears ``done``.
            await asyncio.to_thread(self.write_summary, result)
        return result

    # -- the loop's steps, shared with in-process actors ----------------------------

    def open(self) -> None:
        """Start the clock, the metrics log and the progress bar."""
        cfg = self.setup.config
        self._metrics_log = None
        if self.writes:
            run_dir = self.setup.run_dir
            run_dir.remove_stale_temp_files()  # a killed writer's, before any save
            steps = self.core.env_steps
            if dropped := run_dir.drop_metrics_after(steps):  # a resumed run's later reports
                log.info("dropped %d lines of metrics.jsonl past step %d", dropped, steps)
            self._first_checkpoint = not run_dir.checkpoints.exists()
            self._metrics_log = MetricsLog(run_dir.path)
        self._progress = Progress(cfg.steps, self.core.env_steps, self.progress_enabled)
        self.started = now = time.monotonic()
        self._last = {"report": now, "ckpt": now, "steps": float(self.core.env_steps)}

    def finished(self) -> bool:
        """Budget spent, target reached, or asked to stop."""
        cfg = self.setup.config
        stopped = self.stop.is_set() and self.core.group is None
        return self.core.env_steps >= cfg.steps or self.solved_at is not None or stopped

    def learned(self, metrics: dict[str, float]) -> None:
        """After an update: check it, the target; report and checkpoint when due."""
        cfg = self.setup.config
        self._metrics = metrics
        _check_finite(metrics, self.core)
        self._check_rollbacks()
        now = time.monotonic()
        self._check_target(now - self.started)
        if now - self._last["report"] >= cfg.log_interval_s or self.solved_at is not None:
            record = self._record(metrics, now - self.started, self._last)
            if self._metrics_log is not None:
                self._metrics_log.write(record)
            if self._progress is not None:
                self._progress.update(self.core.env_steps, record)
        due = now - self._last["ckpt"] >= cfg.checkpoint_interval_s or self._first_checkpoint
        if due and self.writes:
            self._checkpoint(now - self.started)
            self._last["ckpt"] = now
            self._first_checkpoint = False

    def wrap_up(self) -> TrainResult:
        """Tell the actors training is done; the final record and checkpoint; the result."""
        self.core.finish()
        self._log_final()
        elapsed = time.monotonic() - self.started
        if self._metrics_log is not None:
            self._metrics_log.write(self._record(self._metrics, elapsed, self._last))
        if self.writes:
            self._checkpoint(elapsed)
        return self._result(elapsed)

    def close(self) -> None:
        """Mark done (also after an error), close the progress bar and the metrics log."""
        self.core.finish()
        if self._progress is not None:
            self._progress.close()
        if self._metrics_log is not None:
            self._metrics_log.close()

    def write_summary(self, result: TrainResult) -> None:
        """summary.json and the learning curve."""
        cfg = self.setup.config
        self.setup.run_dir.write_json(SUMMARY, result.__dict__)
        where = "distributed" if self.core.store is not None else "local"
        plot_curve(self.setup.run_dir.path, f"{cfg.env_id} ({cfg.algo}, {where})")

    def _log_final(self) -> None:
        latest = None if self.core.store is None else self.core.store.latest()
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
        before = snapshot_state(core.learner.state_dict()) if self.writes else None
        try:
            return await core.train_on(batch, self.stop.is_set())
        except UnavailableError:
            if before is not None:
                core.learner.load_state_dict(before)
                self._checkpoint(time.monotonic() - self.started)
                log.error("learner group broken: final checkpoint at version %d", core.version)
            raise

    def _check_rollbacks(self) -> None:
        """Stop, with a checkpoint of the last good version, after too many rollbacks."""
        guard = self.core.guard
        limit = self.setup.config.max_diverged_updates
        if guard.in_row < limit:
            return
        if self.writes:
            self._checkpoint(time.monotonic() - self.started)
        raise DivergedError(
            f"training diverged: {guard.in_row} updates in a row were rolled back (the last: "
            f"{guard.reason}); the final checkpoint holds the last good weights; lower the "
            "learning rate or check the rewards"
        )

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
            "diverged_updates": core.guard.rolled_back,
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
            self.run_data(),
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
    """Several learners: an update that diverged stops the group (one learner alone
    rolls it back, so its losses reach here finite)."""
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
    metrics_page: MetricsPageConfig | None = None,
) -> TrainResult:
    """Build the learner and serve it until training ends (blocking).

    The metrics page (``dist.metrics_port``) listens on the host of ``listen`` unless
    ``metrics_page`` says otherwise.
    """
    if metrics_page is None and dist.metrics_port:
        metrics_page = MetricsPageConfig(dist.metrics_port, listen_host(listen))
    run = LearnerRun(setup, dist, progress, group, metrics_page=metrics_page)
    return asyncio.run(run.serve(listen, server_config, on_bound))
