"""Service DNS of the one-machine cluster, as CoreDNS answers it for headless Services.

A query for ``SVC``, ``SVC.NS``, ``SVC.NS.svc`` or ``SVC.NS.svc.cluster.local``
returns one A record per Ready pod that the Service selects; a StatefulSet's pod
also has ``POD.SVC.NS.svc.cluster.local`` (its ``spec.serviceName``). A name the
cluster does not know is NXDOMAIN, a known name asked for another type (AAAA,
SRV, TXT) is an empty NOERROR answer; nothing is forwarded. Answers are computed
for every query from the cluster's state (``lookup``), so a pod that stops being
Ready leaves the answer at once; the TTL is 1 s.

The server speaks UDP and TCP (for answers that do not fit in 512 bytes) on the
bridge's address, port 53, on two daemon threads. ``dnslib`` parses and builds the
packets.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import struct
import threading
from collections.abc import Callable

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

logger = logging.getLogger(__name__)

TTL_S = 1
Lookup = Callable[[str], list[str] | None]
"""Name (lowercase, without the final dot) -> addresses, or None for an unknown name."""


def answer(query: bytes, lookup: Lookup, *, limit: int | None = 512) -> bytes | None:
    """The reply to the packet ``query`` (None when it is not a DNS query)."""
    try:
        request = DNSRecord.parse(query)
    except Exception:  # dnslib raises several kinds for a malformed packet
        return None
    reply = request.reply()
    question = request.q
    addresses = lookup(str(question.qname).rstrip(".").lower())
    if addresses is None:
        reply.header.rcode = RCODE.NXDOMAIN
    elif question.qtype in (QTYPE.A, QTYPE.ANY):
        for address in addresses:
            reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=TTL_S))
    packed: bytes = reply.pack()
    if limit is not None and len(packed) > limit:  # the client asks again over TCP
        truncated = request.reply()
        truncated.header.tc = 1
        packed = truncated.pack()
    return packed


class ServiceDns:
    """A DNS server for the cluster's names on ``address:port``."""

    def __init__(self, address: str, lookup: Lookup, port: int = 53) -> None:
        self.lookup = lookup
        outer = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = answer(data, outer.lookup)
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                header = self.rfile.read(2)
                if len(header) < 2:
                    return
                reply = answer(self.rfile.read(struct.unpack("!H", header)[0]), outer.lookup,
                               limit=None)  # fmt: skip
                if reply is not None:
                    self.wfile.write(struct.pack("!H", len(reply)) + reply)

        socketserver.ThreadingUDPServer.allow_reuse_address = True
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._servers: list[socketserver.BaseServer] = [
            socketserver.ThreadingUDPServer((address, port), Udp),
            socketserver.ThreadingTCPServer((address, port), Tcp),
        ]
        for server in self._servers:
            server.daemon_threads = True  # type: ignore[attr-defined]
        self._threads = [
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
            for s in self._servers
        ]
        for thread in self._threads:
            thread.start()
        logger.debug("service DNS on %s:%d", address, port)

    def close(self) -> None:
        """Stop both servers and close their sockets."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)


def resolve(name: str, server: str, port: int = 53, timeout_s: float = 2.0) -> list[str]:
    """Ask ``server`` for the A records of ``name`` (a check for tests and tools)."""
    query = DNSRecord.question(name, "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        sock.sendto(query.pack(), (server, port))
        reply = DNSRecord.parse(sock.recv(4096))
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]
