"""``fleetmind site``: one site joins a federation from its own machine (a SuperNode)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``site`` subcommand."""
    parser = subparsers.add_parser(
        "site",
        help="join a federation as one site: a Flower SuperNode running fleetmind's ClientApp",
        description=(
            "Start a Flower SuperNode that runs fleetmind's ClientApp with this site's "
            "private environment and connects to the SuperLink over TLS with the site's "
            "node key (docs/federated.md, 'A deployment across machines')."
        ),
    )
    parser.add_argument("--superlink", required=True, metavar="HOST:PORT", help="SuperLink address")
    parser.add_argument(
        "--root-certificates",
        type=Path,
        required=True,
        metavar="CA.pem",
        help="PEM CA that signed the SuperLink's certificate",
    )
    parser.add_argument(
        "--auth-key",
        type=Path,
        required=True,
        metavar="KEY",
        help="this site's private key (its public key registered with the SuperLink)",
    )
    parser.add_argument(
        "--site", type=int, required=True, metavar="I", help="this site's index in the run"
    )
    parser.add_argument(
        "--env-id", metavar="ENV_ID", help="this site's env id (default: the run's)"
    )
    parser.add_argument(
        "--site-config",
        type=Path,
        metavar="FILE",
        help="YAML/JSON 'sites: [...]': this site's parameters are entry I",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment parameter of this site (repeatable; over the site config's)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port of the SuperNode's local API (default: free)"
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=None,
        help="attempts to reach the SuperLink before giving up (default: forever)",
    )
    parser.set_defaults(handler=run)


def site_params(args: argparse.Namespace) -> dict[str, float] | None:
    """This site's parameters: its site-config entry, then --param over it (None: none
    given, the run's are used)."""
    from fleetmind.core.errors import ConfigError
    from fleetmind.federated.settings import parse_params
    from fleetmind.federated.sites import read_site_config

    params: dict[str, float] | None = None
    if args.site_config is not None:
        entries = read_site_config(args.site_config)
        if not 0 <= args.site < len(entries):
            raise ConfigError(
                f"--site {args.site} is not in {args.site_config}, which describes "
                f"{len(entries)} sites"
            )
        params = dict(entries[args.site])
    if args.param:
        params = {**(params or {}), **parse_params(",".join(args.param))}
    return params


def run(args: argparse.Namespace) -> int:
    """Check the site's settings, then become its SuperNode (``flower-supernode``)."""
    from fleetmind.cli.federate_cmd import needs_flower

    try:
        from fleetmind.federated.supernode import SiteNode
    except ImportError as exc:
        raise needs_flower("site", exc) from None
    node = SiteNode(
        superlink=args.superlink,
        root_certificates=args.root_certificates,
        auth_key=args.auth_key,
        site=args.site,
        env_id=args.env_id,
        params=site_params(args),
        port=args.port,
        max_retries=args.max_retries,
    )
    node.validate()
    command = node.command()
    os.execve(command[0], command, node.environment())
