"""Flower's deployment engine on this machine: a SuperLink, one SuperNode per site.

Each is its own process, started with Flower's own commands; they talk HTTPS (the
SuperLink's certificate from a throwaway CA, :mod:`fleetmind.federated.pki`) and the
SuperLink admits only SuperNodes whose public key was registered with it::

    with Deployment(folder) as fleet:
        fleet.start_superlink()                 # flower-superlink --ssl-* --enable-supernode-auth
        for site in range(settings.sites):
            fleet.add_site(site)                # key, flwr supernode register, flower-supernode
        summary = fleet.run(settings)           # flwr run APP --stream; the run dir's summary

The app that ``flwr run`` submits is a folder holding only a ``pyproject.toml``
(:func:`write_flower_app`): the ServerApp and ClientApp come from the installed
fleetmind, the run's settings are its run config. Keys and certificates stay in
``folder`` (a private temporary directory); the processes' logs are copied to the
run directory's ``deployment/`` folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from fleetmind.core.errors import (
    AuthenticationError,
    ConfigError,
    PreconditionError,
    UnavailableError,
)
from fleetmind.federated.pki import write_node_key, write_tls
from fleetmind.federated.server_app import ERROR_FILE
from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.supernode import SiteNode, flower_command, python_path
from fleetmind.rpc.server import free_port

log = logging.getLogger("fleetmind.federated")

CONNECTION = "fleetmind"
"""Name of the SuperLink connection in the private Flower home."""
START_TIMEOUT_S = 90.0
STOP_GRACE_S = 10.0


def toml_value(value: Any) -> str:
    """A scalar as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def write_flower_app(folder: Path, settings: FederationSettings) -> Path:
    """A Flower App folder whose run config is ``settings``."""
    folder.mkdir(parents=True, exist_ok=True)
    config = "\n".join(f"{k} = {toml_value(v)}" for k, v in settings.to_run_config().items())
    (folder / "pyproject.toml").write_text(
        f"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "fleetmind-federated"
version = "0.1.0"
description = "fleetmind's ServerApp and ClientApp"
license = "Apache-2.0"
dependencies = ["fleetmind[federated]"]

[tool.flwr.app]
publisher = "fleetmind"

[tool.flwr.app.components]
serverapp = "fleetmind.federated.server_app:app"
clientapp = "fleetmind.federated.client_app:app"

[tool.flwr.app.config]
{config}
"""
    )
    return folder


def tail(path: Path, lines: int = 3) -> str:
    """The last non-empty lines of a log, joined on ' | '."""
    text = path.read_text(errors="replace") if path.is_file() else ""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


class Deployment:
    """The processes of a federation on this machine, stopped when the block ends."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.home = self.folder / "flwr-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.ca, self.cert, self.key = write_tls(self.folder)
        self.port = 0
        self.processes: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "FLWR_HOME": str(self.home),
            "FLWR_TELEMETRY_ENABLED": "0",
            "PYTHONPATH": python_path(),
        }

    def __enter__(self) -> Deployment:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def log_path(self, name: str) -> Path:
        """Where process ``name`` writes."""
        return self.folder / f"{name}.log"

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        out = self.log_path(name).open("wb")
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=self.folder
        )
        self.processes.append((name, process, out))
        return process

    def start_superlink(self) -> None:
        """The SuperLink: HTTPS, SuperNode authentication on, its APIs on one port."""
        self.port = free_port()
        process = self._start(
            "superlink",
            [
                flower_command("flower-superlink"),
                "--ssl-ca-certfile", str(self.ca),
                "--ssl-certfile", str(self.cert),
                "--ssl-keyfile", str(self.key),
                "--enable-supernode-auth",
                "--disable-runtime-dependency-installation",
                "--host", "127.0.0.1",
                "--port", str(self.port),
            ],
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise UnavailableError(f"the SuperLink exited: {tail(self.log_path('superlink'))}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.2)
        else:
            raise UnavailableError(f"the SuperLink did not listen within {START_TIMEOUT_S:.0f} s")
        (self.home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
            f'address = "127.0.0.1:{self.port}"\nroot-certificates = "{self.ca}"\n'
        )

    def register(self, public_key: Path) -> None:
        """Register a SuperNode's public key with the SuperLink (``flwr supernode register``)."""
        done = subprocess.run(
            [flower_command("flwr"), "supernode", "register", str(public_key), CONNECTION],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise UnavailableError(f"registering {public_key.name} failed: {done.stdout[-300:]}")

    def add_site(self, site: int, register: bool = True) -> None:
        """Site ``site``'s SuperNode, with a new key (registered unless told otherwise);
        waits until the SuperLink has admitted it, AuthenticationError if it refused."""
        public = write_node_key(self.folder / f"site-{site}")
        if register:
            self.register(public)
        self.start_site(site)

    def start_site(self, site: int, name: str | None = None) -> subprocess.Popen[bytes]:
        """Start site ``site``'s SuperNode with the key it has (again, after it died: it
        rejoins as the same node); its log is ``name`` (default ``site-I``)."""
        name = name or f"site-{site}"
        node = SiteNode(f"127.0.0.1:{self.port}", self.ca, self.folder / f"site-{site}", site)
        process = self._start(name, node.command())
        deadline = time.monotonic() + START_TIMEOUT_S
        while "SuperNode ID:" not in self.log_path(name).read_text(errors="replace"):
            if process.poll() is not None:
                raise AuthenticationError(
                    f"the SuperLink refused site {site}'s SuperNode: {tail(self.log_path(name))}"
                )
            if time.monotonic() > deadline:
                raise UnavailableError(f"site {site}'s SuperNode did not connect in time")
            time.sleep(0.2)
        return process

    def run(self, settings: FederationSettings) -> dict[str, Any]:
        """Submit the apps with ``settings`` (``flwr run --stream``) and wait for the end."""
        if settings.run_dir is None:
            raise PreconditionError("the run directory must exist before the run is submitted")
        run_dir = Path(settings.run_dir).resolve()
        settings.run_dir = run_dir
        app = write_flower_app(self.folder / "app", settings)
        with self.log_path("run").open("wb") as out:
            done = subprocess.run(
                [flower_command("flwr"), "run", str(app), CONNECTION, "--stream"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                check=False,
            )
        error = run_dir / ERROR_FILE
        if error.is_file():
            raise ConfigError(json.loads(error.read_text())["error"])
        summary = run_dir / "summary.json"
        if not summary.is_file():
            raise UnavailableError(
                f"the deployed run ended (flwr run: {done.returncode}) without a summary: "
                f"{tail(self.log_path('run'))}"
            )
        data: dict[str, Any] = json.loads(summary.read_text())
        return data

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after a grace period)."""
        for _, process, _ in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for _, process, out in reversed(self.processes):
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            out.close()
        self.processes.clear()

    def keep_logs(self, run_dir: Path) -> None:
        """Copy the processes' logs (no keys) into ``run_dir/deployment``."""
        target = Path(run_dir) / "deployment"
        target.mkdir(exist_ok=True)
        for path in self.folder.glob("*.log"):
            shutil.copy(path, target / path.name)
