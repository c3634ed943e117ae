"""One way into training, for the ``fleetmind train`` command and ``fleetmind.train``.

Both build a plan and run it, so the command and the Python API cannot drift::

    plan = plan_training("CartPole-v1", settings={"steps": 10_000, "actors": 2})
    result = plan.run()   # actors=0: this process alone; else a learner here, N actor processes

    plan = plan_resume("runs/cp", {"steps": 20_000})
    result = plan.run()   # the same kind of run again, from its latest checkpoint

The command builds its plans from flags and YAML files (:mod:`fleetmind.cli.train_cmd`),
the Python API from keywords (:func:`plan_training`, :func:`plan_resume`). The
settings are the fields of :class:`TrainConfig` and :class:`DistConfig` either way,
and :meth:`TrainPlan.check` refuses a bad combination before anything is created.
Building a plan imports neither torch nor gRPC (the command's start stays quick);
running one does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetmind.algos.registry import get_config_cls
from fleetmind.config import coerce_fields, config_from_mapping, partition_settings
from fleetmind.core.errors import ConfigError
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import DistConfig, check_dist

if TYPE_CHECKING:
    from fleetmind.runtime.result import TrainResult

SETTINGS = (TrainConfig, DistConfig)
"""The dataclasses whose fields are the settings of a run (``fleetmind train`` flags)."""


@dataclass
class TrainPlan:
    """A new run: what to train, over which processes, and where it is written."""

    config: TrainConfig
    """What to train, for how long, and the run directory."""
    algo_config: Any
    """The algorithm's config dataclass."""
    dist: DistConfig = field(default_factory=DistConfig)
    """Actor and learner processes; ``actors=0`` trains in this process."""
    force: bool = False
    """Delete a non-empty run directory first."""
    progress: bool | None = None
    """Progress bar; None: when stderr is a terminal."""

    def check(self) -> None:
        """ConfigError when the settings cannot launch; nothing is created yet."""
        self.dist.validate()
        if self.dist.actors > 0:
            check_dist(self.config.algo, self.dist)
        elif self.dist.mode != "sync":
            raise ConfigError(
                f"--mode {self.dist.mode} needs actor processes: add --actors N (without "
                "actors the run trains in this process, one update per chunk)"
            )

    def run(self) -> TrainResult:
        """Train in this process, or with the local launcher when there are actors."""
        self.check()
        if self.dist.actors > 0:
            from fleetmind.runtime.launch.launcher import train_distributed

            return train_distributed(
                self.config, self.algo_config, self.dist, force=self.force, progress=self.progress
            )
        from fleetmind.runtime.local import train as train_local

        return train_local(self.config, self.algo_config, force=self.force, progress=self.progress)


@dataclass
class ResumePlan:
    """A run continued from its latest checkpoint, with the processes it had."""

    run_dir: Path
    """The run directory."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """TrainConfig fields to change (only the budget, target and intervals may)."""
    dist_overrides: dict[str, Any] = field(default_factory=dict)
    """DistConfig fields to change; ``actors`` > 0, given or saved, starts actor processes."""
    progress: bool | None = None
    """Progress bar; None: when stderr is a terminal."""

    def dist(self) -> DistConfig:
        """The run's saved distributed settings with the overrides applied, checked."""
        from fleetmind.runtime.run_dir import RunDir

        saved = RunDir.open_existing(self.run_dir).read_config().get("distributed", {})
        merged = {**(saved if isinstance(saved, dict) else {}), **self.dist_overrides}
        dist = config_from_mapping(DistConfig, merged, "distributed")
        dist.validate()
        return dist

    def run(self) -> TrainResult:
        """Resume in this process, or with the local launcher when the run has actors."""
        if self.dist().actors > 0:
            from fleetmind.runtime.launch.launcher import resume_distributed

            return resume_distributed(
                self.run_dir, self.overrides, self.dist_overrides, progress=self.progress
            )
        from fleetmind.runtime.local import resume as resume_local

        return resume_local(self.run_dir, self.overrides, progress=self.progress)


def plan_training(
    env_id: str,
    *,
    algo: str = "ppo",
    algo_config: Any | None = None,
    settings: Mapping[str, Any] | None = None,
    force: bool = False,
    progress: bool | None = None,
) -> TrainPlan:
    """The plan of a new run from flat ``settings`` (TrainConfig and DistConfig fields).

    An unknown setting raises ConfigError naming it, with close matches and the list
    of settings; a value of the wrong type raises ConfigError naming its setting.
    """
    train_data, dist_data = partition_settings(settings or {}, SETTINGS, "train")
    config = config_from_mapping(
        TrainConfig, {**train_data, "env_id": env_id, "algo": algo}, "train"
    )
    dist = config_from_mapping(DistConfig, dist_data, "train")
    return TrainPlan(config, algo_settings(config.algo, algo_config), dist, force, progress)


def plan_resume(
    run_dir: str | Path,
    overrides: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> ResumePlan:
    """The plan of a resumed run; ``overrides`` are TrainConfig and DistConfig fields."""
    train_data, dist_data = partition_settings(overrides or {}, SETTINGS, "resume")
    return ResumePlan(
        Path(run_dir),
        coerce_fields(TrainConfig, train_data, "resume"),
        coerce_fields(DistConfig, dist_data, "resume"),
        progress,
    )


def algo_settings(algo: str, algo_config: Any | None) -> Any:
    """The config of ``algo``: its defaults (None), built from a mapping, or as given."""
    cls = get_config_cls(algo)
    if algo_config is None:
        return cls()
    if isinstance(algo_config, Mapping):
        return config_from_mapping(cls, dict(algo_config), algo.lower())
    if not isinstance(algo_config, cls):
        raise ConfigError(
            f"algo_config of {algo} must be {cls.__name__}(...) or a mapping of its fields, "
            f"got {type(algo_config).__name__}"
        )
    return algo_config
