"""``fleetmind baseline``: run a scenario's hand-written policy and print its measures.

The scenario's registry entry says which policies it has and how to run them
(:class:`~fleetmind.envs.env_entry.ScenarioBaselines`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

POLICY_HELP = (
    "baseline to run; traffic: fixed-time, max-pressure, longest-queue; offloading: "
    "all-local, all-edge, all-cloud, random, round-robin, greedy, optimum; job shop: spt, "
    "mwkr, mopnr, fifo"
)


def register(subparsers: Any) -> None:
    """Add the ``baseline`` subcommand."""
    parser = subparsers.add_parser(
        "baseline",
        help="run a scenario's baseline policy and print its measures",
        description=(
            "Run a hand-written policy on a scenario and print its measures, averaged over "
            "the episodes and per episode: traffic-* and sumo-* (signal controllers; "
            "mean_waiting_time_s, mean_travel_time_s, throughput_vehicles) and "
            "fleetmind/offload-* (task placement; mean_completion_time_s, "
            "deadline_miss_rate, mean_energy_j) and fleetmind/jobshop-* (dispatching rules; "
            "makespan, gap_to_lower_bound, aborted_operations)."
        ),
    )
    parser.add_argument(
        "env_id", metavar="ENV_ID", help="scenario id: traffic-grid4x4, fleetmind/offload-toy, ..."
    )
    parser.add_argument("--policy", required=True, metavar="NAME", help=POLICY_HELP)
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
    from fleetmind.envs.registry import lookup_baselines

    overrides = parse_overrides(args.set)
    baselines = lookup_baselines(args.env_id)
    result = baselines.run_policy(
        args.env_id, args.policy, episodes=args.episodes, seed=args.seed, overrides=overrides
    )
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['env_id']}  policy={result['policy']}  episodes={len(result['episodes'])}")
    for name in baselines.metrics:
        per = ", ".join(f"{row[name]:.4g}" for row in result["episodes"])
        print(f"  {name:<22} {result[name]:10.4g}   per episode: {per}")
    return 0
