"""The run directory a federation leaves: an ordinary one that eval and serve accept.

::

    DIR/config.json      train settings, the algorithm's section, and "federated"
    DIR/metrics.jsonl    one row per round (see :meth:`GlobalRun.record`)
    DIR/events.out.*     the same numbers for TensorBoard (step: env steps)
    DIR/curve.png        the sites' mean return against env steps
    DIR/summary.json     the outcome (also what ``fleetmind federate --json`` prints)
    DIR/checkpoints/     the global policy after each round (fleetmind.checkpoint/1)

The global policy lives in a learner built on the env id itself (no site's variant)
with the sites' algorithm; its checkpoints are written by the one checkpoint writer
of every run (:func:`fleetmind.runtime.state.checkpoint_state`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fleetmind.config import config_to_dict
from fleetmind.core.episodes import EpisodeStats
from fleetmind.federated.accountant import local_noise_std
from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.site_training import Weights, algo_spec, get_weights, set_weights
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.parts import build_parts
from fleetmind.runtime.run_dir import CONFIG, SUMMARY, MetricsLog, RunDir, plot_curve
from fleetmind.runtime.state import RunData, checkpoint_state


def train_config(settings: FederationSettings) -> TrainConfig:
    """The train settings the checkpoint records (total steps over every site)."""
    return TrainConfig(
        env_id=settings.env_id,
        algo=settings.algo,
        seed=settings.seed,
        steps=settings.rounds * settings.sample_size() * settings.local_steps,
        envs=settings.envs,
        run_dir=settings.run_dir,
        normalize_obs=False,
    )


def settings_record(settings: FederationSettings, noise: float | None) -> dict[str, Any]:
    """The federation's section of config.json (with the noise multiplier that ran)."""
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()}
    record["noise_multiplier"] = noise
    record["sample_size"] = settings.sample_size()
    return record


def full_config(settings: FederationSettings, noise: float | None) -> dict[str, Any]:
    """config.json: train settings, the algorithm's section and the federation's."""
    spec, algo_cfg = algo_spec(settings)
    return {
        **config_to_dict(train_config(settings)),
        spec.name: config_to_dict(algo_cfg),
        "federated": settings_record(settings, noise),
    }


def create_run_dir(settings: FederationSettings, noise: float | None, force: bool) -> RunDir:
    """A new run directory with its config.json (RunDirError when it is taken)."""
    if settings.run_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        settings.run_dir = Path("runs") / f"{settings.env_id.replace('/', '_')}-federated-{stamp}"
    run_dir = RunDir.create(settings.run_dir, force=force)
    run_dir.write_json(CONFIG, full_config(settings, noise))
    return run_dir


class GlobalRun:
    """The global policy of a federation and the files that record it."""

    def __init__(self, settings: FederationSettings, noise: float | None) -> None:
        if settings.run_dir is None:
            raise ValueError("settings.run_dir must be set (create_run_dir sets it)")
        self.settings = settings
        self.noise = noise
        path = Path(settings.run_dir)
        self.run_dir = (
            RunDir(path)
            if (path / CONFIG).is_file()
            else create_run_dir(settings, noise, force=False)
        )
        spec, algo_cfg = algo_spec(settings)
        self.parts = build_parts(
            settings.env_id, spec, algo_cfg, envs=1, seed=settings.seed, normalize_obs=False
        )
        self.parts.env.close()
        self.config = train_config(settings)
        self.full = {**full_config(settings, noise), **self.parts.space_config()}
        self.metrics = MetricsLog(path)
        self.started = time.monotonic()
        self.env_steps = 0
        self.last: dict[str, Any] = {}

    def initial_weights(self) -> Weights:
        """The weights of round 0 (the learner's seeded initialisation)."""
        return get_weights(self.parts)

    def record(self, server_round: int, weights: Weights, row: dict[str, Any]) -> None:
        """Checkpoint the global policy after ``server_round`` and append its row."""
        self.env_steps += self.settings.sample_size() * self.settings.local_steps
        set_weights(self.parts, weights)
        self.parts.learner.version = server_round
        data = RunData(
            env_steps=self.env_steps,
            stats=EpisodeStats(),
            agents=self.parts.spec.agents,
            obs_stats=[None],
        )
        wall = time.monotonic() - self.started
        state = checkpoint_state(self.config, self.full, self.parts.learner, data, wall)
        self.run_dir.checkpoints.save(state)
        self.last = {"round": server_round, "env_steps": self.env_steps, "wall_time_s": wall, **row}
        self.metrics.write(self.last)

    def finish(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Close the metrics, draw the curve, write and return summary.json (with
        ``extra`` added)."""
        self.metrics.close()
        plot_curve(self.run_dir.path, f"{self.settings.env_id}: {self.settings.sites} sites")
        last = self.last
        summary = {
            "rounds": last.get("round", 0),
            "env_steps": self.env_steps,
            "wall_time_s": time.monotonic() - self.started,
            "episode_return_mean": last.get("episode_return_mean"),
            "site_returns": last.get("site_returns"),
            "epsilon": finite_or_none(last.get("epsilon")),
            "delta": self.settings.dp_delta if self.noise is not None else None,
            "noise_multiplier": self.noise,
            "clip": self.settings.dp_clip if self.noise is not None else None,
            "sample_fraction": self.settings.sample_fraction,
            "sample_size": self.settings.sample_size(),
            "sites": self.settings.sites,
            "strategy": self.settings.strategy,
            "secure_aggregation": self.settings.secure_aggregation,
            **self.local_dp_summary(),
            "excluded_updates": sum_rows(self.run_dir.path, "excluded_updates"),
            "run_dir": str(self.run_dir.path),
            **(extra or {}),
        }
        self.run_dir.write_json(SUMMARY, summary)
        return summary

    def local_dp_summary(self) -> dict[str, Any]:
        """With local DP: the epsilon each update was sent with, the noise every site
        added, and the most a site spent over the run, at ``local_delta``."""
        cfg = self.settings
        if cfg.local_dp_epsilon is None or cfg.local_dp_clip is None:
            return {"local_epsilon": None}
        return {
            "local_epsilon": self.last.get("local_epsilon"),
            "local_delta": cfg.local_dp_delta,
            "local_epsilon_per_update": cfg.local_dp_epsilon,
            "local_noise_std": local_noise_std(
                cfg.local_dp_epsilon, cfg.local_dp_delta, cfg.local_dp_clip
            ),
        }


def finite_or_none(value: Any) -> Any:
    """``value``, or None for an infinite or NaN float (JSON has neither)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def sum_rows(path: Path, key: str) -> int:
    """The sum of ``key`` over the rows of metrics.jsonl."""
    from fleetmind.runtime.run_dir import read_metrics

    return int(sum(row.get(key) or 0 for row in read_metrics(path)))
