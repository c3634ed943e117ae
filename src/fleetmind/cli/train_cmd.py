"""``fleetmind train``: train an agent, or resume a run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fleetmind.algos.registry import (
    algorithm_names,
    algorithm_summary,
    get_algorithm,
    get_config_cls,
)
from fleetmind.cli.dataclass_args import add_dataclass_arguments, explicit_values, parse_value
from fleetmind.config import config_from_mapping, merge_into
from fleetmind.core.errors import ConfigError
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import DistConfig
from fleetmind.runtime.launch.train_plan import ResumePlan, TrainPlan


def register(subparsers: Any) -> None:
    """Add the ``train`` subcommand; its options come from the config dataclasses."""
    parser = subparsers.add_parser(
        "train",
        help="train an agent on an environment",
        description=(
            "Train an agent. Settings come from the defaults, then --config FILE.yaml, "
            "then the flags. With --resume DIR the run continues from its latest checkpoint."
        ),
    )
    parser.add_argument(
        "positional_env_id",
        nargs="?",
        metavar="ENV_ID",
        help="environment id (see `fleetmind envs`)",
    )
    add_dataclass_arguments(parser, TrainConfig, skip=("env_id",))
    parser.add_argument("--config", type=Path, metavar="FILE.yaml", help="YAML file of settings")
    parser.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR")
    parser.add_argument("--force", action="store_true", help="delete a non-empty --run-dir first")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: on when stderr is a terminal)",
    )
    dist = parser.add_argument_group(
        "distributed options", "a learner and N actor processes over gRPC (docs/distributed.md)"
    )
    add_dataclass_arguments(dist, DistConfig)
    for name in algorithm_names():
        group = parser.add_argument_group(f"{name} options", algorithm_summary(name))
        add_dataclass_arguments(group, get_config_cls(name), prefix=name)
    parser.set_defaults(handler=run)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; ConfigError naming the file (and line) otherwise."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
            f"offset {exc.start}); save it as UTF-8"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of settings, got {type(data).__name__}"
        )
    return data


def flag_values(args: argparse.Namespace, cls: type, prefix: str = "") -> dict[str, Any]:
    raw = explicit_values(args, cls, prefix)
    dash = f"{prefix}." if prefix else ""
    return {
        k: parse_value(cls, k, v, f"--{dash}{k.replace('_', '-')}") if isinstance(v, str) else v
        for k, v in raw.items()
    }


def build_configs(args: argparse.Namespace) -> tuple[TrainConfig, Any]:
    """Resolve defaults < YAML < flags into the train and algorithm configs."""
    file_data = load_yaml(args.config) if args.config else {}
    algo_names = set(algorithm_names())
    sections = algo_names | {"distributed"}
    train_data = {k: v for k, v in file_data.items() if str(k) not in sections}
    train_cfg = config_from_mapping(TrainConfig, train_data, where=str(args.config or "config"))
    train_cfg = merge_into(train_cfg, flag_values(args, TrainConfig))
    if args.positional_env_id:
        train_cfg.env_id = args.positional_env_id
    spec = get_algorithm(train_cfg.algo)
    section = file_data.get(spec.name, {}) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"{spec.name} section of {args.config} must be a mapping")
    algo_cfg: Any = config_from_mapping(spec.config_cls, section, where=spec.name)
    for other in algo_names - {spec.name}:
        if flag_values(args, get_config_cls(other), other):
            raise ConfigError(f"--{other}.* options were given but --algo is {spec.name}")
    algo_cfg = merge_into(algo_cfg, flag_values(args, spec.config_cls, spec.name), spec.name)
    return train_cfg, algo_cfg


def _resume_file_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--config`` beside ``--resume``: its train and distributed settings, as overrides
    (the resume rules say which may change); an algorithm section cannot change."""
    if not args.config:
        return {}, {}
    file_data = load_yaml(args.config)
    for name in algorithm_names():
        if file_data.get(name):
            raise ConfigError(
                f"{args.config} sets {name}.* but an algorithm's settings cannot change when "
                "resuming; drop that section or start a new run"
            )
    sections = set(algorithm_names()) | {"distributed"}
    train_data = {k: v for k, v in file_data.items() if str(k) not in sections}
    train = config_from_mapping(TrainConfig, train_data, where=str(args.config))
    given = {str(k).replace("-", "_") for k in train_data}
    dist_section = file_data.get("distributed", {}) or {}
    if not isinstance(dist_section, dict):
        raise ConfigError(f"distributed section of {args.config} must be a mapping")
    dist = config_from_mapping(DistConfig, dist_section, where="distributed")
    dist_given = {str(k).replace("-", "_") for k in dist_section}
    return (
        {k: getattr(train, k) for k in given},
        {k: getattr(dist, k) for k in dist_given},
    )


def build_dist_config(args: argparse.Namespace) -> DistConfig:
    """The distributed settings: defaults < the YAML ``distributed`` section < flags."""
    file_data = load_yaml(args.config) if args.config else {}
    section = file_data.get("distributed", {}) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"distributed section of {args.config} must be a mapping")
    dist = config_from_mapping(DistConfig, section, where="distributed")
    return merge_into(dist, flag_values(args, DistConfig))


def build_plan(args: argparse.Namespace) -> TrainPlan | ResumePlan:
    """The run the flags ask for: the plan ``fleetmind.train`` builds from keywords."""
    if args.resume is not None:
        file_train, file_dist = _resume_file_settings(args)
        overrides = {**file_train, **flag_values(args, TrainConfig)}
        if args.positional_env_id:
            overrides["env_id"] = args.positional_env_id
        dist = {**file_dist, **flag_values(args, DistConfig)}
        return ResumePlan(args.resume, overrides, dist, args.progress)
    train_cfg, algo_cfg = build_configs(args)
    if not train_cfg.env_id:
        raise ConfigError("an environment id is required: fleetmind train ENV_ID ...")
    return TrainPlan(train_cfg, algo_cfg, build_dist_config(args), args.force, args.progress)


def run(args: argparse.Namespace) -> int:
    """Train (or resume) and print the summary."""
    result = build_plan(args).run()
    print(json.dumps(result.__dict__), file=sys.stdout)
    return 0
