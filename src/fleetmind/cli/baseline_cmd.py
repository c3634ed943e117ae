"""``fleetmind baseline``: run a hand-written signal controller on a traffic scenario."""

from __future__ import annotations

import argparse
import json
from typing import Any

POLICIES = ("fixed-time", "max-pressure", "longest-queue")


def register(subparsers: Any) -> None:
    """Add the ``baseline`` subcommand."""
    parser = subparsers.add_parser(
        "baseline",
        help="run a baseline traffic-signal controller and print traffic metrics",
        description=(
            "Run a hand-written traffic-signal controller on a traffic scenario "
            "(traffic-* or sumo-*) and print mean_waiting_time_s, mean_travel_time_s "
            "and throughput_vehicles, averaged over the episodes and per episode."
        ),
    )
    parser.add_argument(
        "env_id", metavar="ENV_ID", help="traffic scenario id, e.g. traffic-grid4x4"
    )
    parser.add_argument(
        "--policy", required=True, metavar="{" + ",".join(POLICIES) + "}", help="controller to run"
    )
    parser.add_argument("--episodes", type=int, default=1, help="episodes to run (default: 1)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the first episode; episode k uses seed+k"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario setting, e.g. --set episode_seconds=1800 "
        "--set demand.profile=constant (YAML values)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}`` (values parsed as YAML)."""
    import yaml

    from fleetmind.core.errors import ConfigError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r} must look like KEY=VALUE")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value does not parse: {exc}") from exc
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Run the episodes and print the metrics."""
    from fleetmind.envs.scenarios.traffic.evaluation import run_baseline

    result = run_baseline(
        args.env_id,
        args.policy,
        episodes=args.episodes,
        seed=args.seed,
        overrides=parse_overrides(args.set),
    )
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['env_id']}  policy={result['policy']}  episodes={len(result['episodes'])}")
    for name in ("mean_waiting_time_s", "mean_travel_time_s", "throughput_vehicles"):
        per = ", ".join(f"{row[name]:.1f}" for row in result["episodes"])
        print(f"  {name:<22} {result[name]:10.2f}   per episode: {per}")
    return 0
