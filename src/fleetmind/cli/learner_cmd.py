"""``fleetmind learner``: serve a learner that remote actors feed over gRPC.

Training options are those of ``fleetmind train``; the address, TLS files and
token also come from ``FLEETMIND_LISTEN``, ``FLEETMIND_TLS_CERT``,
``FLEETMIND_TLS_KEY``, ``FLEETMIND_TLS_CA``, ``FLEETMIND_TOKEN`` and
``FLEETMIND_TOKEN_FILE``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fleetmind.algos.registry import algorithm_names, get_algorithm
from fleetmind.cli.dataclass_args import add_dataclass_arguments
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import DistConfig, LearnerServeConfig


def register(subparsers: Any) -> None:
    """Add the ``learner`` subcommand."""
    parser = subparsers.add_parser(
        "learner",
        help="serve a learner for remote actors (fleetmind actor)",
        description=(
            "Listen for actors, learn from their trajectories and broadcast weights. "
            "With --resume DIR the run continues from its latest checkpoint."
        ),
    )
    parser.add_argument("positional_env_id", nargs="?", metavar="ENV_ID", help="environment id")
    add_dataclass_arguments(parser, LearnerServeConfig)
    add_dataclass_arguments(parser, TrainConfig, skip=("env_id",))
    add_dataclass_arguments(parser, DistConfig, skip=("actors", "learners"))
    parser.add_argument("--config", type=Path, metavar="FILE.yaml", help="YAML file of settings")
    parser.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR")
    parser.add_argument("--force", action="store_true", help="delete a non-empty --run-dir first")
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar"
    )
    for name in algorithm_names():
        group = parser.add_argument_group(f"{name} options", get_algorithm(name).summary)
        add_dataclass_arguments(group, get_algorithm(name).config_cls, prefix=name)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until training ends; print the summary."""
    from fleetmind.cli.train_cmd import build_configs, flag_values
    from fleetmind.core.config import config_from_mapping, config_to_dict, merge_into
    from fleetmind.core.errors import ConfigError
    from fleetmind.runtime.dist_config import apply_env
    from fleetmind.runtime.launcher import check_dist
    from fleetmind.runtime.learner_run import RunSetup, run_learner
    from fleetmind.runtime.local import prepare_new, prepare_resume

    serve_flags = flag_values(args, LearnerServeConfig)
    serve = merge_into(apply_env(LearnerServeConfig(), set(serve_flags)), serve_flags)
    dist_flags = flag_values(args, DistConfig)
    if args.resume is not None:
        overrides = flag_values(args, TrainConfig)
        if overrides.get("env_id") is None:
            overrides.pop("env_id", None)
        config, spec, algo_cfg, run_dir, full, state = prepare_resume(args.resume, overrides)
        saved = {k: v for k, v in full.get("distributed", {}).items() if k in ("mode",)}
        dist = config_from_mapping(DistConfig, {**saved, **dist_flags}, "distributed")
        setup = RunSetup(config, spec, algo_cfg, run_dir, full, state)
    else:
        train_cfg, algo_cfg = build_configs(args)
        if not train_cfg.env_id:
            raise ConfigError("an environment id is required: fleetmind learner ENV_ID ...")
        dist = merge_into(DistConfig(), dist_flags)
        check_dist(train_cfg.algo, dist)
        extra = {"distributed": config_to_dict(dist)}
        config, spec, algo_cfg, run_dir, full = prepare_new(
            train_cfg, algo_cfg, force=args.force, extra=extra
        )
        setup = RunSetup(config, spec, algo_cfg, run_dir, full)
    check_dist(setup.spec.name, dist)
    result = run_learner(setup, dist, serve.listen, serve.server_config(), args.progress, _bound)
    print(json.dumps(result.__dict__), file=sys.stdout)
    return 0


def _bound(address: str) -> None:
    print(json.dumps({"listening": address}), file=sys.stdout, flush=True)
