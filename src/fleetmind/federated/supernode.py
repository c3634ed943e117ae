"""One site's SuperNode: Flower's ``flower-supernode`` running fleetmind's ClientApp
with the site's private environment, joining a SuperLink that may be on another
machine::

    node = SiteNode(superlink="fed.example.org:9092", root_certificates=Path("ca.pem"),
                    auth_key=Path("site-3"), site=3, params={"length": 0.4})
    os.execve(*node.exec_args())               # what ``fleetmind site`` does

The site's environment parameters (and its env id, where it runs its own) travel
in the SuperNode's node config (``partition-id=3 env-params="length=0.4"``), which
only the site's ClientApp reads: the server never sees them. TLS is always on (the
SuperLink's CA), and the node proves who it is with its private key, whose public
half the operator has registered with the SuperLink (``flwr supernode register``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from fleetmind.core.errors import ConfigError, PreconditionError
from fleetmind.rpc.server import free_port

MAX_RETRIES = 3
"""Connection attempts before a SuperNode gives up on its SuperLink (None: forever)."""


def flower_command(name: str) -> str:
    """The path of one of Flower's commands, beside this interpreter."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise PreconditionError(
            f"{name} is not installed beside {sys.executable}; pip install 'fleetmind[federated]'"
        )
    return str(path)


def python_path() -> str:
    """PYTHONPATH for Flower's processes: this fleetmind first, then this process's own
    entries made absolute (the processes may run in another directory)."""
    import fleetmind

    own = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    entries = [str(Path(fleetmind.__file__).resolve().parents[1])]
    entries += [str(Path(p).resolve()) for p in own]
    return os.pathsep.join(dict.fromkeys(entries))


def node_config(site: int, env_id: str | None, params: dict[str, float] | None) -> str:
    """The SuperNode's ``--node-config``: its site index and, when given, its env."""
    parts = [f"partition-id={site}"]
    if env_id is not None:
        parts.append(f'env-id="{env_id}"')
    if params is not None:
        parts.append('env-params="' + ",".join(f"{k}={v!r}" for k, v in params.items()) + '"')
    return " ".join(parts)


@dataclass
class SiteNode:
    """What a site needs to join a federation from its own machine."""

    superlink: str
    """HOST:PORT of the SuperLink's Fleet API."""
    root_certificates: Path
    """PEM CA that signed the SuperLink's certificate."""
    auth_key: Path
    """The site's private key (OpenSSH, ECDSA); its public key must be registered."""
    site: int
    """The site's index in the federation (its partition-id)."""
    env_id: str | None = None
    """The site's own env id (None: the run's)."""
    params: dict[str, float] | None = None
    """The site's environment parameters (None: the run's for this site)."""
    port: int = 0
    """Port of the SuperNode's own runtime API on 127.0.0.1 (0: a free one)."""
    max_retries: int | None = MAX_RETRIES
    """Attempts to reach the SuperLink before giving up (None: forever)."""

    def validate(self) -> None:
        """ConfigError for an address without a port, a missing file or a negative site."""
        host, sep, port = self.superlink.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"--superlink must be HOST:PORT, got {self.superlink!r}")
        if self.site < 0:
            raise ConfigError(f"--site must be >= 0, got {self.site}")
        files = (("--root-certificates", self.root_certificates), ("--auth-key", self.auth_key))
        for flag, path in files:
            if not Path(path).is_file():
                raise ConfigError(f"{flag} {path}: no such file")
        if self.env_id is not None:
            from fleetmind.federated.sites import check_site_params

            check_site_params(self.env_id, [self.params or {}])

    def command(self) -> list[str]:
        """``flower-supernode`` with TLS, the node key and the site's node config."""
        args = [
            flower_command("flower-supernode"),
            "--superlink", self.superlink,
            "--root-certificates", str(self.root_certificates),
            "--auth-supernode-private-key", str(self.auth_key),
            "--node-config", node_config(self.site, self.env_id, self.params),
            "--port", str(self.port or free_port()),
        ]  # fmt: skip
        if self.max_retries is not None:
            args += ["--max-retries", str(self.max_retries)]
        return args

    def environment(self) -> dict[str, str]:
        """The SuperNode's environment: this fleetmind first on the path, no telemetry."""
        return {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "FLWR_TELEMETRY_ENABLED": "0",
            "PYTHONPATH": python_path(),
        }
