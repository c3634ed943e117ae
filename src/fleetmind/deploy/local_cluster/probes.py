"""Container probes, run as kubelet runs them.

A probe (``grpc``, ``tcpSocket``, ``httpGet`` or ``exec``) is tried every
``periodSeconds`` after ``initialDelaySeconds``, each try bounded by
``timeoutSeconds``; ``successThreshold`` successes in a row make its result a
success, ``failureThreshold`` failures in a row a failure. The startup probe runs
first and stops at its first success; only then do readiness and liveness run.
Before its first result a readiness probe counts as failed (the pod is not Ready)
and a liveness probe as passed. As kubelet does, a ``grpc`` probe calls
``grpc.health.v1.Health/Check`` over plaintext on the pod's address and passes
on SERVING; ``httpGet`` passes on a status from 200 to 399 (HTTPS without
checking the certificate); ``tcpSocket`` on an accepted connection; ``exec`` on
exit status 0.
"""

from __future__ import annotations

import dataclasses
import http.client
import logging
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fleetmind.core.errors import ConfigError

logger = logging.getLogger(__name__)

ExecRunner = Callable[[Sequence[str], float], int]
"""Runs a command in the container's namespaces with a timeout; returns its exit status."""


@dataclass(frozen=True)
class Probe:
    """One probe of a container spec (Kubernetes' defaults where a field is absent)."""

    kind: str
    """``grpc``, ``tcpSocket``, ``httpGet`` or ``exec``."""
    port: int = 0
    service: str = ""
    """The health service a ``grpc`` probe asks about."""
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


def parse_probe(spec: Mapping[str, Any] | None, ports: Mapping[str, int]) -> Probe | None:
    """The probe of a container's ``*Probe`` field; ``ports``: container port names."""
    if not spec:
        return None
    probe = _action(spec, ports)
    return dataclasses.replace(
        probe,
        initial_delay_s=float(spec.get("initialDelaySeconds", 0)),
        period_s=float(spec.get("periodSeconds", 10)),
        timeout_s=float(spec.get("timeoutSeconds", 1)),
        success_threshold=int(spec.get("successThreshold", 1)),
        failure_threshold=int(spec.get("failureThreshold", 3)),
    )


def _action(spec: Mapping[str, Any], ports: Mapping[str, int]) -> Probe:
    if "grpc" in spec:
        return Probe("grpc", int(spec["grpc"]["port"]), service=spec["grpc"].get("service") or "")
    if "tcpSocket" in spec:
        return Probe("tcpSocket", _port(spec["tcpSocket"]["port"], ports))
    if "httpGet" in spec:
        h = spec["httpGet"]
        headers = tuple((x["name"], x["value"]) for x in h.get("httpHeaders") or [])
        return Probe("httpGet", _port(h["port"], ports), path=h.get("path", "/"),
                     scheme=h.get("scheme", "HTTP"), headers=headers)  # fmt: skip
    if "exec" in spec:
        return Probe("exec", command=tuple(spec["exec"]["command"]))
    raise ConfigError(f"probe {sorted(spec)} has none of grpc, tcpSocket, httpGet, exec")


def _port(port: int | str, ports: Mapping[str, int]) -> int:
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    if port not in ports:
        raise ConfigError(f"probe port {port!r} names no container port ({sorted(ports)})")
    return ports[port]


def attempt(probe: Probe, address: str, run_exec: ExecRunner | None = None) -> bool:
    """One try of ``probe`` against the pod at ``address``."""
    try:
        if probe.kind == "grpc":
            return _grpc(probe, address)
        if probe.kind == "tcpSocket":
            with socket.create_connection((address, probe.port), timeout=probe.timeout_s):
                return True
        if probe.kind == "httpGet":
            return _http(probe, address)
        if probe.kind == "exec" and run_exec is not None:
            return run_exec(probe.command, probe.timeout_s) == 0
    except (OSError, grpc.RpcError, http.client.HTTPException, subprocess.SubprocessError):
        return False
    return False


def _grpc(probe: Probe, address: str) -> bool:
    with grpc.insecure_channel(f"{address}:{probe.port}") as channel:
        check: Any = health_pb2_grpc.HealthStub(channel).Check  # type: ignore[attr-defined]
        reply = check(health_pb2.HealthCheckRequest(service=probe.service), timeout=probe.timeout_s)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _http(probe: Probe, address: str) -> bool:
    connection: http.client.HTTPConnection
    if probe.scheme.upper() == "HTTPS":
        context = ssl._create_unverified_context()  # kubelet does not verify either
        connection = http.client.HTTPSConnection(
            address, probe.port, timeout=probe.timeout_s, context=context
        )
    else:
        connection = http.client.HTTPConnection(address, probe.port, timeout=probe.timeout_s)
    try:
        connection.request("GET", probe.path, headers=dict(probe.headers))
        return 200 <= connection.getresponse().status < 400
    finally:
        connection.close()


class ProbeWorker:
    """Runs one probe on its own thread and reports each change of its result.

    ``on_result(passed)`` is called whenever the result changes; a startup worker
    stops after its first success.
    """

    def __init__(
        self,
        name: str,
        probe: Probe,
        check: Callable[[], bool],
        on_result: Callable[[bool], None],
        *,
        initially: bool,
        stop_on_success: bool = False,
    ) -> None:
        self.probe = probe
        self.result = initially
        self._check = check
        self._on_result = on_result
        self._stop_on_success = stop_on_success
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        successes = failures = 0
        if self._stop.wait(self.probe.initial_delay_s):
            return
        while not self._stop.is_set():
            if self._check():
                successes, failures = successes + 1, 0
                if successes >= self.probe.success_threshold:
                    self._set(True)
                    if self._stop_on_success:
                        return
            else:
                successes, failures = 0, failures + 1
                if failures >= self.probe.failure_threshold:
                    self._set(False)
            if self._stop.wait(self.probe.period_s):
                return

    def _set(self, passed: bool) -> None:
        if passed == self.result:
            return
        self.result = passed
        if not self._stop.is_set():
            self._on_result(passed)

    def stop(self) -> None:
        """Stop probing (the thread ends within the current try)."""
        self._stop.set()

    def join(self, timeout_s: float) -> None:
        """Wait for the thread to end."""
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
