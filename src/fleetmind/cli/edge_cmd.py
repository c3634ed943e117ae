"""``fleetmind edge RUN --remote TARGET``: run episodes on the edge, offloading by E[T]."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from fleetmind.core.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add the ``edge`` subcommand."""
    parser = subparsers.add_parser(
        "edge",
        help="run episodes on the edge, each decision local or remote by expected time",
        description=(
            "Load the agent of RUN on this device and run episodes of an environment; each "
            "decision runs on the local agent or on a remote fleetmind serve target, "
            "wherever its expected completion time is least within the deadline."
        ),
    )
    parser.add_argument(
        "run_dir", type=Path, metavar="RUN", help="run directory of the local agent"
    )
    parser.add_argument(
        "--remote", action="append", required=True, metavar="TARGET",
        help="host:port of a fleetmind serve replica (repeat for several)",
    )  # fmt: skip
    parser.add_argument("--model", help="served model name (default: the name of RUN)")
    parser.add_argument("--env", required=True, metavar="ENV_ID", help="gymnasium env id")
    parser.add_argument("--episodes", type=int, default=10, help="episodes (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument(
        "--deadline-ms", type=float, default=100.0, help="per-decision deadline (default: 100)"
    )
    parser.add_argument("--loader", help="module:function loading RUN (as fleetmind serve)")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    parser.add_argument("--metrics-host", default="127.0.0.1", help="interface of the metrics")
    parser.add_argument("--token-file", type=Path, help="file whose first token is sent")
    parser.add_argument("--tls-ca", type=Path, help="PEM CA to trust (turns TLS on)")
    parser.add_argument("--tls-cert", type=Path, help="PEM client certificate (mutual TLS)")
    parser.add_argument("--tls-key", type=Path, help="PEM key of --tls-cert")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the episodes and print where the decisions ran."""
    from fleetmind.rpc.auth import read_tokens
    from fleetmind.rpc.metrics_http import MetricsPage, MetricsPageConfig
    from fleetmind.serve.client import Client
    from fleetmind.serve.edge_run import run_edge_episodes
    from fleetmind.serve.offloading import EdgeConfig, OffloadingClient

    if not (math.isfinite(args.deadline_ms) and args.deadline_ms > 0):
        raise ConfigError(f"--deadline-ms must be a positive number, got {args.deadline_ms}")
    if args.episodes <= 0:
        raise ConfigError(f"--episodes must be a positive integer, got {args.episodes}")
    if not args.run_dir.exists():
        raise ConfigError(f"{args.run_dir} does not exist; pass the run directory of the agent")
    token = read_tokens(args.token_file)[0] if args.token_file else None

    def connect(target: str) -> Client:
        return Client(
            target, token=token, tls_ca=args.tls_ca, tls_cert=args.tls_cert,
            tls_key=args.tls_key, max_attempts=1, own_connections=True,
        )  # fmt: skip

    config = EdgeConfig(deadline_s=args.deadline_ms / 1000)
    model = args.model or args.run_dir.resolve().name
    client = OffloadingClient.connect(
        args.run_dir, args.remote, model, config, loader=args.loader, client=connect
    )
    page = None
    try:
        if args.metrics_port is not None:
            page = MetricsPage(
                client.metrics.registry, MetricsPageConfig(args.metrics_port, args.metrics_host)
            )
        result = run_edge_episodes(client, args.env, args.episodes, args.seed)
    finally:
        client.close()
        if page is not None:
            page.close()
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{summary['episodes']} episodes: mean return {summary['mean_return']:.2f}")
    for place, count in sorted(result.places.items()):
        print(f"  decisions at {place:<24} {count:8d}")
    print(f"  mean decision latency      {summary['mean_decision_latency_ms']:8.3f} ms")
    return 0
