"""Single-process training: the loop, its reports, checkpoints and signals.

``LocalTrainer.run`` is the template every trainer follows::

    while env_steps < budget and not solved and not interrupted:
        trajectories = collector.collect(policy)    # one per agent; timed as "env"
        metrics = learner.update(trajectories)      # timed as "learn", NaN-checked
        report every log_interval_s; checkpoint every checkpoint_interval_s
    final checkpoint, summary.json, curve.png
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

import numpy as np

from fleetmind.core.errors import DivergedError
from fleetmind.runtime.collector import Collector
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.parts import RunParts
from fleetmind.runtime.progress import Progress
from fleetmind.runtime.run_dir import SUMMARY, MetricsLog, RunDir, plot_curve
from fleetmind.runtime.state import RunData, checkpoint_state

log = logging.getLogger("fleetmind.train")


@dataclass
class TrainResult:
    """Outcome of a training run (also written to summary.json)."""

    run_dir: str
    """The run directory."""
    solved: bool
    """Whether the target return was reached."""
    solved_at_env_steps: int | None
    """Env steps when it was reached, else None."""
    solved_at_wall_time_s: float | None
    """Wall time in seconds when it was reached, else None."""
    env_steps: int
    """Env steps consumed in total."""
    wall_time_s: float
    """Training wall time in seconds, over all resumptions."""
    episodes: int
    """Episodes finished."""
    episode_return_mean: float | None
    """Mean return of the last 100 episodes."""
    interrupted: bool
    """True if SIGINT or SIGTERM stopped the run."""


class StopFlag:
    """Set by SIGINT/SIGTERM while installed; the loop checks it between updates."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        log.warning("%s received: saving a final checkpoint and stopping", self.signal_name)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __bool__(self) -> bool:
        return self.signal_name is not None


def collector_data(collector: Collector) -> RunData:
    """What a checkpoint records of ``collector``."""
    return RunData(
        env_steps=collector.env_steps,
        stats=collector.stats,
        agents=collector.agents,
        obs_stats=collector.obs_stats,
        state_stats=collector.state_stats,
        reward_stats=collector.reward_stats,
        agent_returns=collector.agent_returns,
    )


class LocalTrainer:
    """Trains one learner (a team of any size) on one vector env in this process."""

    def __init__(
        self,
        config: TrainConfig,
        full_config: dict[str, Any],
        parts: RunParts,
        collector: Collector,
        run_dir: RunDir,
        progress: bool | None = None,
        start: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.full_config = full_config
        self.parts = parts
        self.learner = parts.learner
        self.collector = collector
        self.run_dir = run_dir
        self.progress_enabled = progress
        start = start or {}
        self.wall_offset = float(start.get("wall_time_s", 0.0))
        self.solved_at: tuple[int, float] | None = None
        self.timings = {"env": 0.0, "learn": 0.0}

    def run(self) -> TrainResult:
        """Train until the budget, the target or a signal; always checkpoint at the end."""
        cfg = self.config
        self.run_dir.remove_stale_temp_files()  # a killed writer's, before any save
        metrics_log = MetricsLog(self.run_dir.path)
        progress = Progress(cfg.steps, self.collector.env_steps, self.progress_enabled)
        policy = self.learner.rollout_policy()
        t0 = time.monotonic()
        last_report = last_ckpt = t0
        last_steps = self.collector.env_steps
        try:
            with StopFlag() as stop:
                while self.collector.env_steps < cfg.steps and not stop and self.solved_at is None:
                    metrics = self._iteration(policy)
                    now = time.monotonic()
                    self._check_target(now - t0)
                    if now - last_report >= cfg.log_interval_s or self.solved_at is not None:
                        rate = (self.collector.env_steps - last_steps) / max(
                            now - last_report, 1e-9
                        )
                        record = self._record(metrics, now - t0, rate)
                        metrics_log.write(record)
                        progress.update(self.collector.env_steps, record)
                        last_report, last_steps = now, self.collector.env_steps
                    if now - last_ckpt >= cfg.checkpoint_interval_s:
                        self._checkpoint(now - t0)
                        last_ckpt = now
                elapsed = time.monotonic() - t0
                rate = (self.collector.env_steps - last_steps) / max(
                    time.monotonic() - last_report, 1e-9
                )
                metrics_log.write(self._record({}, elapsed, rate))
                self._checkpoint(elapsed)
                result = self._result(elapsed, interrupted=bool(stop))
        finally:
            progress.close()
            metrics_log.close()
        self.run_dir.write_json(SUMMARY, result.__dict__)
        plot_curve(self.run_dir.path, f"{cfg.env_id} ({cfg.algo})")
        return result

    def _iteration(self, policy: Any) -> dict[str, float]:
        t = time.monotonic()
        trajectories = self.collector.collect(policy, self.learner.version)
        t_env = time.monotonic()
        metrics = self.learner.update(trajectories)
        self.timings["env"] += t_env - t
        self.timings["learn"] += time.monotonic() - t_env
        for key in ("policy_loss", "value_loss", "loss", "q_loss"):
            if key in metrics and not math.isfinite(metrics[key]):
                raise DivergedError(
                    f"training diverged: {key} is {metrics[key]} at update {self.learner.version} "
                    f"(env step {self.collector.env_steps}); lower the learning rate or check "
                    "the rewards"
                )
        return metrics

    def _check_target(self, elapsed: float) -> None:
        target = self.config.target_return
        mean = self.collector.stats.full_window_mean()
        if target is not None and self.solved_at is None and mean is not None and mean >= target:
            self.solved_at = (self.collector.env_steps, self.wall_offset + elapsed)
            log.info("target return %.1f reached at %d env steps", target, self.collector.env_steps)

    def _record(self, metrics: dict[str, float], elapsed: float, rate: float) -> dict[str, Any]:
        stats = self.collector.stats
        mean_return = stats.mean_return()
        record: dict[str, Any] = {
            "env_steps": self.collector.env_steps,
            "wall_time_s": round(self.wall_offset + elapsed, 3),
            "episodes": stats.episodes,
            "episode_return_mean": None if math.isnan(mean_return) else mean_return,
            "episode_length_mean": float(np.mean(stats.lengths)) if stats.lengths else None,
            "steps_per_s": rate,
            "version": self.learner.version,
            "time_env_s": round(self.timings["env"], 3),
            "time_learn_s": round(self.timings["learn"], 3),
        }
        record.update({k: float(v) for k, v in metrics.items()})
        if self.parts.team:
            for agent, mean in self.collector.agent_returns.means().items():
                record[f"return_mean/{agent}"] = mean
        return record

    def _checkpoint(self, elapsed: float) -> None:
        data = collector_data(self.collector)
        state = checkpoint_state(
            self.config, self.full_config, self.learner, data, self.wall_offset + elapsed
        )
        path = self.run_dir.checkpoints.save(state)
        log.debug("checkpoint written: %s", path)

    def _result(self, elapsed: float, interrupted: bool) -> TrainResult:
        mean = self.collector.stats.mean_return()
        return TrainResult(
            run_dir=str(self.run_dir.path),
            solved=self.solved_at is not None,
            solved_at_env_steps=self.solved_at[0] if self.solved_at else None,
            solved_at_wall_time_s=round(self.solved_at[1], 3) if self.solved_at else None,
            env_steps=self.collector.env_steps,
            wall_time_s=round(self.wall_offset + elapsed, 3),
            episodes=self.collector.stats.episodes,
            episode_return_mean=None if math.isnan(mean) else mean,
            interrupted=interrupted,
        )
