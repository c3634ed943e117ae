"""Whether a server would be open to the network, and the refusal to start one that is.

A server on a loopback address (``127.0.0.0/8``, ``::1``, ``localhost``) or a unix
socket is reachable from this machine only. Any other address (``0.0.0.0``, ``[::]``,
an interface's address, a host name) may be reached from the network, and there a
server must know who calls it: a bearer token, or client certificates (mutual TLS).
Server-side TLS alone encrypts the traffic but admits every caller. Without either,
the server starts only when the user asked for it with ``--insecure``::

    check_exposure("127.0.0.1:50051", guarded=False, insecure=False)   # False: local
    check_exposure("0.0.0.0:50051", guarded=True, insecure=False)      # False: guarded
    check_exposure("0.0.0.0:50051", guarded=False, insecure=True)      # True: open, warn
    check_exposure("0.0.0.0:50051", guarded=False, insecure=False)     # ConfigError
"""

from __future__ import annotations

import ipaddress

from fleetmind.core.errors import ConfigError

LOCAL_SCHEMES = ("unix:", "unix-abstract:")
"""Address prefixes of sockets that only this machine reaches."""

OPEN_WARNING = (
    "INSECURE: listening on %s with neither a token nor mutual TLS (--insecure): anyone "
    "who reaches this address can call every method (a learner hands out its config and "
    "weights and trains on what it is sent); see docs/security.md"
)
"""The log line of a server started open with ``--insecure`` (its address)."""


def is_local(address: str) -> bool:
    """Whether a server on ``address`` (``HOST:PORT``, ``[V6]:PORT`` or ``unix:PATH``) is
    reachable from this machine only."""
    if address.startswith(LOCAL_SCHEMES):
        return True
    host = address.rpartition(":")[0] if ":" in address else address
    host = host.strip().removeprefix("[").removesuffix("]")
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # a host name other than localhost, or no host (every interface)
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def check_exposure(address: str, *, guarded: bool, insecure: bool) -> bool:
    """Whether a server on ``address`` will be open to the network (the user passed
    ``--insecure``: warn); ConfigError when it would be and the user did not.

    ``guarded``: a token or mutual TLS decides who may call.
    """
    if guarded or is_local(address):
        return False
    if insecure:
        return True
    raise ConfigError(
        f"refusing to listen on {address} with neither a token nor mutual TLS: anyone who "
        "reaches it could call every method. Pass --token-file FILE, or --tls-cert and "
        "--tls-key with the clients' CA (learner: --tls-ca, serve: --tls-client-ca); or "
        "listen on 127.0.0.1 or a unix: socket; or pass --insecure to serve it open anyway"
    )
