"""Ports that worker processes share: reserved by their parent with SO_REUSEPORT.

A socket bound with SO_REUSEPORT that never listens keeps the port for the workers
(who bind beside it with the same option) and away from any other program, so a port
taken by another program is one clear error at start and not a restart loop::

    keepers = reserve_ports("0.0.0.0", (8001, 8000))   # the gRPC and HTTP ports
    ...                                                  # workers bind with SO_REUSEPORT
    for keeper in keepers:
        keeper.close()
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from fleetmind.core.errors import ConfigError, UnavailableError


def reserve_ports(host: str, ports: Iterable[int | None]) -> list[socket.socket]:
    """:func:`reserve_port` for each port that is not None, in order; all or none."""
    keepers: list[socket.socket] = []
    try:
        for port in ports:
            if port is not None:
                keepers.append(reserve_port(host, port))
    except BaseException:
        for keeper in keepers:
            keeper.close()
        raise
    return keepers


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with SO_REUSEPORT (port 0 picks one), never
    listening: the workers bind beside it, programs without SO_REUSEPORT cannot.
    UnavailableError naming the port when another program already holds it."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve --host {host!r}: {exc.strerror}") from exc
    family, _, _, _, address = infos[0]
    # First without SO_REUSEPORT: fails if anyone holds the port, even a program
    # that would let us share it.
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UnavailableError(
                f"cannot listen on {host}:{port}: {exc.strerror} (is another program "
                "using the port?)"
            ) from exc
        chosen = int(probe.getsockname()[1])
    keeper = socket.socket(family, socket.SOCK_STREAM)
    keeper.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    keeper.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        keeper.bind((address[0], chosen, *address[2:]))
    except OSError as exc:
        keeper.close()
        raise UnavailableError(f"cannot listen on {host}:{chosen}: {exc.strerror}") from exc
    return keeper
