"""``fleetmind eval``: evaluate a trained agent."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``eval`` subcommand."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a trained agent",
        description="Run episodes with the latest checkpoint of a run directory.",
    )
    parser.add_argument(
        "run_dir", type=Path, metavar="DIR", help="run directory (or checkpoint file)"
    )
    parser.add_argument("--episodes", type=int, default=10, help="episodes to run (default: 10)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the first episode (default: 0)"
    )
    parser.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of the mode"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--remote",
        metavar="TARGET",
        help="take the actions from the model served at host:port (the run's agent, or each "
        "agent of a team as MODEL.AGENT) instead of the checkpoint; same episodes and seeds",
    )
    parser.add_argument(
        "--remote-model", metavar="NAME", help="served model name (default: the run's name)"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline per call, seconds")
    parser.add_argument("--token-file", type=Path, help="file whose first token is sent")
    parser.add_argument("--tls-ca", type=Path, help="PEM CA to trust (turns TLS on)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the result."""
    from fleetmind.runtime.evaluate import evaluate

    if args.remote is None:
        result = evaluate(args.run_dir, args.episodes, args.seed, deterministic=not args.stochastic)
    else:
        result = _remote(args)
    extra = _scenario_fields(result.scenario_metrics)
    if args.json:
        print(
            json.dumps(
                {
                    "mean_return": result.mean_return,
                    "std_return": result.std_return,
                    "episodes": result.episodes,
                    **extra,
                }
            )
        )
    else:
        print(
            f"{result.episodes} episodes: mean return {result.mean_return:.2f}"
            f" +/- {result.std_return:.2f}"
        )
        for key, value in extra.items():
            if key != "per_episode":
                print(f"  {key:<22} {value:10.2f}")
    return 0


def _remote(args: argparse.Namespace) -> Any:
    from fleetmind.core.errors import ConfigError
    from fleetmind.rpc.auth import read_tokens
    from fleetmind.runtime.evaluate import evaluate
    from fleetmind.serve.client import Client
    from fleetmind.serve.remote import remote_deciders

    if args.stochastic:
        raise ConfigError("--stochastic and --remote: a server answers deterministic actions")
    path = Path(args.run_dir)
    model = args.remote_model or (path.name if path.is_dir() else path.parent.parent.name)
    token = read_tokens(args.token_file)[0] if args.token_file else None
    targets = [t for t in args.remote.split(",") if t]
    with Client(targets, timeout_s=args.timeout, token=token, tls_ca=args.tls_ca) as client:
        return evaluate(path, args.episodes, args.seed, deciders=remote_deciders(client, model))


def _scenario_fields(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Scenario measures (traffic: the same keys as ``fleetmind baseline``)."""
    if not metrics:
        return {}
    out = {k: v for k, v in metrics.items() if k not in ("episodes", "env_id", "seed")}
    out["per_episode"] = metrics.get("episodes", [])
    return out
