"""``fleetmind call TARGET --model NAME --obs '[...]'``: ask a served model for actions."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from fleetmind.core.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add the ``call`` subcommand."""
    parser = subparsers.add_parser(
        "call",
        help="send observations to a served model and print its outputs",
        description=(
            "Send one observation (or a batch: a list of observations) to a model served "
            "over the Open Inference Protocol and print the actions (all outputs with --json)."
        ),
    )
    parser.add_argument("target", metavar="TARGET", help="host:port (comma-separate replicas)")
    parser.add_argument("--model", required=True, help="model name")
    parser.add_argument("--obs", required=True, help="observation as JSON, e.g. '[0.1, 0, 0, 0]'")
    parser.add_argument("--model-version", default="", help="model version (default: latest)")
    parser.add_argument("--json", action="store_true", help="print every output as JSON")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also ask for and print the attributions: how much each observation feature "
        "pushed the chosen action (integrated gradients)",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds")
    parser.add_argument("--token-file", type=Path, help="file whose first token is sent")
    parser.add_argument("--tls-ca", type=Path, help="PEM CA to trust (turns TLS on)")
    parser.add_argument("--tls-cert", type=Path, help="PEM client certificate (mutual TLS)")
    parser.add_argument("--tls-key", type=Path, help="PEM key of --tls-cert")
    parser.set_defaults(handler=run)


def _observations(text: str) -> Any:
    import numpy as np

    try:
        obs = np.asarray(json.loads(text), dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"--obs must be a JSON number list, e.g. '[0.1, 0, 0, 0]': {exc}"
        ) from None
    return obs


def run(args: argparse.Namespace) -> int:
    """Call the model once and print the result."""
    from fleetmind.rpc.auth import read_tokens
    from fleetmind.serve.client import Client

    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise ConfigError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    obs = _observations(args.obs)
    token = read_tokens(args.token_file)[0] if args.token_file else None
    targets = [t for t in args.target.split(",") if t]
    with Client(
        targets,
        timeout_s=args.timeout,
        token=token,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    ) as client:
        info = client.model_metadata(args.model, args.model_version)
        obs_rank = len(info.inputs[0].shape) - 1 if info.inputs else obs.ndim
        single = obs.ndim == obs_rank
        batch = obs[None] if single else obs
        outputs = client.infer(args.model, batch, version=args.model_version, explain=args.explain)
    if args.json:
        data = {k: (v[0] if single else v).tolist() for k, v in outputs.items()}
        print(json.dumps(data))
    else:
        actions = outputs["action"]
        print(json.dumps((actions[0] if single else actions).tolist()))
        if args.explain:
            attributions = outputs["attributions"]
            print(
                json.dumps({"attributions": (attributions[0] if single else attributions).tolist()})
            )
    return 0
