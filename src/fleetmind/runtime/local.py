"""Start or resume a single-process training run (one actor beside its learner).

result = train(TrainConfig(env_id="CartPole-v1", target_return=475))
result = resume(Path("runs/cartpole"), {"steps": 1_000_000})

:func:`prepare_new`, :func:`prepare_resume` and :func:`prepare_restart` prepare the
run directory of a learner service as well.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from fleetmind.algos.base import AlgoSpec
from fleetmind.algos.registry import get_algorithm
from fleetmind.config import config_from_mapping, config_to_dict
from fleetmind.core.errors import ConfigError
from fleetmind.envs.registry import resolve_env_id
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import DistConfig
from fleetmind.runtime.learner.in_process import train_in_process
from fleetmind.runtime.learner.run import LearnerRun
from fleetmind.runtime.learner.run_setup import RunSetup
from fleetmind.runtime.pairing import check_pairing, preflight
from fleetmind.runtime.result import TrainResult
from fleetmind.runtime.run_dir import CONFIG, RunDir
from fleetmind.runtime.run_identity import RESUMABLE_OVERRIDES, check_same_run, describe

log = logging.getLogger("fleetmind.learner")


def resolve_algo_config(spec: AlgoSpec, algo_config: Any | None) -> Any:
    """The algorithm config: given, or defaults; validated when it has ``validate``."""
    cfg = algo_config if algo_config is not None else spec.config_cls()
    if not isinstance(cfg, spec.config_cls):
        raise ConfigError(f"algorithm {spec.name} expects a {spec.config_cls.__name__}")
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    return cfg


def default_run_dir(config: TrainConfig) -> Path:
    """runs/ENV-ALGO-YYYYmmdd-HHMMSS."""
    safe_env = config.env_id.replace("/", "_")
    return Path("runs") / f"{safe_env}-{config.algo}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(
    config: TrainConfig,
    algo_config: Any | None = None,
    *,
    force: bool = False,
    progress: bool | None = None,
) -> TrainResult:
    """Train from scratch in a new run directory."""
    config, spec, algo_cfg, run_dir, full = prepare_new(config, algo_config, force=force)
    return _run(config, spec, algo_cfg, run_dir, full, progress, state=None)


def prepare_new(
    config: TrainConfig,
    algo_config: Any | None,
    *,
    force: bool = False,
    extra: dict[str, Any] | None = None,
    write: bool = True,
) -> tuple[TrainConfig, AlgoSpec, Any, RunDir, dict[str, Any]]:
    """Validate the configs, create the run directory and write config.json.

    ``extra`` adds sections to config.json (the distributed settings); ``write=False``
    only validates (a learner that does not own the run directory).
    """
    spec, algo_cfg = _resolve(config, algo_config)
    preflight(config, spec, algo_cfg)  # env/algorithm mismatches, before the run dir exists
    if config.run_dir is None:
        config.run_dir = default_run_dir(config)
    full = {**config_to_dict(config), spec.name: config_to_dict(algo_cfg), **(extra or {})}
    if not write:
        return config, spec, algo_cfg, RunDir(config.run_dir, config.keep_checkpoints), full
    run_dir = RunDir.create(config.run_dir, force=force, keep_checkpoints=config.keep_checkpoints)
    run_dir.write_json(CONFIG, full)
    return config, spec, algo_cfg, run_dir, full


def _resolve(config: TrainConfig, algo_config: Any | None) -> tuple[AlgoSpec, Any]:
    """Validate ``config`` (resolving its env id); the algorithm and its config."""
    config.validate()
    config.env_id = resolve_env_id(config.env_id)
    spec = get_algorithm(config.algo)
    return spec, resolve_algo_config(spec, algo_config)


def prepare_restart(
    config: TrainConfig,
    algo_config: Any | None,
    *,
    extra: dict[str, Any] | None = None,
    write: bool = True,
) -> tuple[TrainConfig, AlgoSpec, Any, RunDir, dict[str, Any], dict[str, Any] | None]:
    """A new run in ``config.run_dir``, or the same run found there resumed.

    What a learner that Kubernetes restarts needs: it runs the same command again. A
    directory without config.json gets a new run (:func:`prepare_new`); one whose
    config.json records this run (:mod:`fleetmind.runtime.run_identity`) resumes from
    its latest checkpoint, or starts again from step 0 when it has none, with the
    settings of :data:`RESUMABLE_OVERRIDES` taken from ``config``. Another run's
    directory is refused with RunDirError before anything is written.
    """
    path = config.run_dir
    if path is None or not (Path(path) / CONFIG).is_file():
        return (*prepare_new(config, algo_config, extra=extra, write=write), None)
    spec, algo_cfg = _resolve(config, algo_config)
    new = {**config_to_dict(config), spec.name: config_to_dict(algo_cfg), **(extra or {})}
    saved = RunDir.open_existing(Path(path)).read_config()
    check_same_run(saved, new, Path(path))
    overrides = {key: new[key] for key in RESUMABLE_OVERRIDES}
    prepared = prepare_resume(Path(path), overrides, write=write, allow_fresh=True)
    state = prepared[-1]
    if state is None:
        log.info("run %s (%s) has no checkpoint yet: starting it again", path, describe(saved))
    else:
        log.info(
            "resuming run %s (%s) from checkpoint at step %d",
            path,
            describe(saved),
            int(state["env_steps"]),
        )
    return prepared


def resume(
    path: Path, overrides: dict[str, Any] | None = None, progress: bool | None = None
) -> TrainResult:
    """Continue the run in ``path`` from its latest checkpoint."""
    config, spec, algo_cfg, run_dir, full, state = prepare_resume(path, overrides)
    return _run(config, spec, algo_cfg, run_dir, full, progress, state=state)


SECTIONS = ("distributed",)
"""Sections of config.json that are not train settings (kept as they are on resume)."""


def prepare_resume(
    path: Path,
    overrides: dict[str, Any] | None = None,
    *,
    write: bool = True,
    allow_fresh: bool = False,
) -> tuple[TrainConfig, AlgoSpec, Any, RunDir, dict[str, Any], dict[str, Any] | None]:
    """Open the run in ``path``, load its latest checkpoint, apply allowed overrides.

    ``write=False`` leaves config.json as it is (a learner that does not own the run
    directory); ``allow_fresh`` accepts a run without checkpoints (state None).
    """
    run_dir = RunDir.open_existing(Path(path))
    fresh = allow_fresh and not run_dir.checkpoints.exists()
    state = None if fresh else run_dir.checkpoints.load_latest()
    saved = run_dir.read_config()
    algo_name = str(saved.get("algo", ""))
    spec = get_algorithm(algo_name)
    algo_cfg = resolve_algo_config(
        spec, config_from_mapping(spec.config_cls, saved.get(spec.name, {}), spec.name)
    )
    sections = {k: saved[k] for k in SECTIONS if k in saved}
    base = {k: v for k, v in saved.items() if k != spec.name and k not in SECTIONS}
    for key, value in (overrides or {}).items():
        if key not in RESUMABLE_OVERRIDES and value != base.get(key):
            raise ConfigError(
                f"--{key.replace('_', '-')} cannot change when resuming (the run has "
                f"{base.get(key)!r}); only {', '.join(RESUMABLE_OVERRIDES)} can"
            )
        base[key] = value
    base["run_dir"] = str(path)
    config = config_from_mapping(TrainConfig, base, "config")
    config.validate()
    run_dir.checkpoints.keep = config.keep_checkpoints
    full = {**config_to_dict(config), spec.name: config_to_dict(algo_cfg), **sections}
    if write:
        run_dir.write_json(CONFIG, full)
    return config, spec, algo_cfg, run_dir, full, state


def _run(
    config: TrainConfig,
    spec: AlgoSpec,
    algo_cfg: Any,
    run_dir: RunDir,
    full: dict[str, Any],
    progress: bool | None,
    state: dict[str, Any] | None,
) -> TrainResult:
    """One actor and the learner in this process, joined by the in-process client."""
    check_pairing(config, spec)
    setup = RunSetup(config, spec, algo_cfg, run_dir, full, state)
    run = LearnerRun(setup, DistConfig(mode="sync"), progress, local_envs=config.envs)
    return train_in_process(run, config.envs)
