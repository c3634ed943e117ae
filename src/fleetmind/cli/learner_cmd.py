"""``fleetmind learner``: serve a learner that remote actors feed over gRPC.

Training options are those of ``fleetmind train``; the address, TLS files and
token also come from ``FLEETMIND_LISTEN``, ``FLEETMIND_TLS_CERT``,
``FLEETMIND_TLS_KEY``, ``FLEETMIND_TLS_CA``, ``FLEETMIND_TOKEN`` and
``FLEETMIND_TOKEN_FILE``, the run directory from ``FLEETMIND_RUN_DIR``.

Started with ``--run-dir DIR`` on a directory that holds the same run (a pod that
Kubernetes restarted runs the same command again), the learner resumes it from its
latest checkpoint; a directory holding another run is refused. Under ``torchrun``
(``WORLD_SIZE`` > 1, with ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``)
each process is one learner of a group that averages gradients; rank 0 alone writes
the run directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from fleetmind.algos.registry import algorithm_names, algorithm_summary, get_config_cls
from fleetmind.cli.dataclass_args import add_dataclass_arguments
from fleetmind.cli.train_cmd import flag_values
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import DistConfig, LearnerServeConfig

RUN_DIR_ENV = "FLEETMIND_RUN_DIR"
"""The run directory when ``--run-dir`` is not given (a pod's volume)."""


def register(subparsers: Any) -> None:
    """Add the ``learner`` subcommand."""
    parser = subparsers.add_parser(
        "learner",
        help="serve a learner for remote actors (fleetmind actor)",
        description=(
            "Listen for actors, learn from their trajectories and broadcast weights. "
            "With --resume DIR the run continues from its latest checkpoint; so does the "
            "same command started again on its --run-dir (or FLEETMIND_RUN_DIR), which "
            "refuses a directory that holds another run."
        ),
    )
    parser.add_argument("positional_env_id", nargs="?", metavar="ENV_ID", help="environment id")
    add_dataclass_arguments(parser, LearnerServeConfig)
    add_dataclass_arguments(parser, TrainConfig, skip=("env_id",))
    add_dataclass_arguments(parser, DistConfig, skip=("actors", "learners"))
    parser.add_argument("--config", type=Path, metavar="FILE.yaml", help="YAML file of settings")
    parser.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR")
    parser.add_argument(
        "--join",
        type=Path,
        metavar="DIR",
        help="serve the run prepared in DIR (its config.json, its latest checkpoint if any) "
        "without rewriting its config: how the local launcher starts several learners",
    )
    parser.add_argument("--force", action="store_true", help="delete a non-empty --run-dir first")
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar"
    )
    for name in algorithm_names():
        group = parser.add_argument_group(f"{name} options", algorithm_summary(name))
        add_dataclass_arguments(group, get_config_cls(name), prefix=name)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until training ends; print the summary."""
    from fleetmind.config import merge_into
    from fleetmind.runtime.dist_config import apply_env, check_dist
    from fleetmind.runtime.learner.collective import LearnerGroup, RankInfo, listen_address
    from fleetmind.runtime.learner.run import run_learner

    rank = RankInfo.from_env()  # torchrun's variables: one learner of several
    serve_flags = flag_values(args, LearnerServeConfig)
    serve = merge_into(apply_env(LearnerServeConfig(), set(serve_flags)), serve_flags)
    world = rank.world_size if rank is not None else 1
    listen = listen_address(serve.listen, rank)
    server_config = serve.server_config()
    server_config.open_at(listen)  # an open port is refused before the run directory exists
    setup, dist = _setup(args, owner=rank is None or rank.rank == 0, world=world)
    if rank is not None and rank.rank != 0:
        dist.metrics_port = None  # rank 0 serves the group's Prometheus metrics
    check_dist(setup.spec.name, dist, world)
    page = serve.metrics_page(dist.metrics_port, listen) if dist.metrics_port else None
    group = LearnerGroup.join(rank, dist.collective_timeout_s) if rank is not None else None
    try:
        result = run_learner(setup, dist, listen, server_config, args.progress, _bound, group, page)
    finally:
        if group is not None:
            group.close()
    print(json.dumps(result.__dict__), file=sys.stdout)
    return 0


def _setup(args: argparse.Namespace, owner: bool, world: int) -> tuple[Any, DistConfig]:
    """The run to serve: new, resumed or joined; only the ``owner`` writes its directory
    (a new one only once the settings can train)."""
    from fleetmind.cli.train_cmd import build_configs
    from fleetmind.config import config_from_mapping, config_to_dict, merge_into
    from fleetmind.core.errors import ConfigError
    from fleetmind.runtime.dist_config import check_dist
    from fleetmind.runtime.learner.run_setup import RunSetup
    from fleetmind.runtime.local import prepare_new, prepare_restart, prepare_resume

    dist_flags = flag_values(args, DistConfig)
    existing = args.join if args.join is not None else args.resume
    if existing is not None:
        overrides = flag_values(args, TrainConfig)
        if overrides.get("env_id") is None:
            overrides.pop("env_id", None)
        config, spec, algo_cfg, run_dir, full, state = prepare_resume(
            existing, overrides, write=owner and args.join is None, allow_fresh=bool(args.join)
        )
        keep: tuple[str, ...] = ("mode", "sync_timeout_s", "actor_timeout_s")
        keep += ("collective_timeout_s", "max_policy_lag", "queue_chunks")
        keep += ("metrics_port",) if args.join else ()  # one joined run: the launcher's port
        saved = {k: v for k, v in full.get("distributed", {}).items() if k in keep}
        dist = config_from_mapping(DistConfig, {**saved, **dist_flags}, "distributed")
        return RunSetup(config, spec, algo_cfg, run_dir, full, state), dist
    train_cfg, algo_cfg = build_configs(args)
    if not train_cfg.env_id:
        raise ConfigError("an environment id is required: fleetmind learner ENV_ID ...")
    if train_cfg.run_dir is None and os.environ.get(RUN_DIR_ENV):
        train_cfg.run_dir = Path(os.environ[RUN_DIR_ENV])
    dist = merge_into(DistConfig(), dist_flags)
    check_dist(train_cfg.algo, dist, world)
    extra = {"distributed": config_to_dict(dist)}
    if args.force:
        prepared = prepare_new(train_cfg, algo_cfg, force=True, extra=extra, write=owner)
        return RunSetup(*prepared), dist
    return RunSetup(*prepare_restart(train_cfg, algo_cfg, extra=extra, write=owner)), dist


def _bound(address: str) -> None:
    print(json.dumps({"listening": address}), file=sys.stdout, flush=True)
