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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the result."""
    from fleetmind.runtime.evaluate import evaluate

    result = evaluate(args.run_dir, args.episodes, args.seed, deterministic=not args.stochastic)
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


def _scenario_fields(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Scenario measures (traffic: the same keys as ``fleetmind baseline``)."""
    if not metrics:
        return {}
    out = {k: v for k, v in metrics.items() if k not in ("episodes", "env_id", "seed")}
    out["per_episode"] = metrics.get("episodes", [])
    return out
