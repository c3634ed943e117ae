"""A network namespace joined to this one by a veth link that a test shapes and cuts.

::

    with ShapedLink("fm-edge-srv") as link:          # 10.72.0.1 here, 10.72.0.2 there
        server = subprocess.Popen(link.inside([... "serve", "--host", "10.72.0.2" ...]))
        link.shape(loss_pct=5)                       # real packet loss, both directions
        link.cut(); ...; link.heal()                 # a partition: every packet dropped
        relay = link.delay_line(50082, 50081, 20)    # 10.72.0.2:50082 -> :50081, 20 ms each way

Loss and partitions are packet drops by iptables inside the namespace, matched on its
end of the link (both directions; the namespace's loopback and this namespace's rules
are untouched). ``tc netem`` would add delay in the kernel, but kernels without
``sch_netem`` (some sandboxes) refuse it, so delay is a delay line instead: a relay in
the namespace that holds every byte ``delay_ms`` before passing it on, each way
(:mod:`tests.multihost.delay_line`). Needs root, ``ip`` and ``iptables``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import TracebackType


def link_tools_available() -> bool:
    """Whether this process may build namespaces and drop packets in them."""
    return (
        os.name == "posix"
        and os.geteuid() == 0
        and shutil.which("ip") is not None
        and shutil.which("iptables") is not None
    )


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


class ShapedLink:
    """Namespace ``ns`` at ``{subnet}.2``, this side at ``{subnet}.1``."""

    def __init__(self, ns: str, subnet: str = "10.72.0", device: str = "fme") -> None:
        self.ns = ns
        self.host_ip, self.remote_ip = f"{subnet}.1", f"{subnet}.2"
        self._host_dev, self._ns_dev = f"{device}0", f"{device}1"
        self._loss_pct = 0.0

    def __enter__(self) -> ShapedLink:
        self._remove()  # left over by an interrupted run
        _run("ip", "netns", "add", self.ns)
        try:
            _run("ip", "-n", self.ns, "link", "set", "lo", "up")
            _run("ip", "link", "add", self._host_dev, "type", "veth", "peer", "name",
                 self._ns_dev, "netns", self.ns)  # fmt: skip
            _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self._host_dev)
            _run("ip", "-n", self.ns, "addr", "add", f"{self.remote_ip}/30", "dev", self._ns_dev)
            _run("ip", "link", "set", self._host_dev, "up")
            _run("ip", "-n", self.ns, "link", "set", self._ns_dev, "up")
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._remove()

    def _remove(self) -> None:
        subprocess.run(["ip", "link", "del", self._host_dev], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], check=False, capture_output=True)

    def inside(self, command: list[str]) -> list[str]:
        """``command`` run inside the namespace."""
        return ["ip", "netns", "exec", self.ns, *command]

    def shape(self, loss_pct: float = 0.0) -> None:
        """Drop ``loss_pct`` % of the packets in each direction, at random."""
        self._loss_pct = loss_pct
        self._drop(loss_pct)

    def cut(self) -> None:
        """Drop every packet (a partition) until :meth:`heal`."""
        self._drop(100.0)

    def heal(self) -> None:
        """Back to the loss before :meth:`cut`."""
        self._drop(self._loss_pct)

    def _drop(self, loss_pct: float) -> None:
        iptables = ["ip", "netns", "exec", self.ns, "iptables"]
        for chain in ("INPUT", "OUTPUT"):
            _run(*iptables, "-F", chain)
        if loss_pct <= 0:
            return
        match = [] if loss_pct >= 100 else [
            "-m", "statistic", "--mode", "random", "--probability", f"{loss_pct / 100:.6f}"
        ]  # fmt: skip
        _run(*iptables, "-A", "INPUT", "-i", self._ns_dev, *match, "-j", "DROP")
        _run(*iptables, "-A", "OUTPUT", "-o", self._ns_dev, *match, "-j", "DROP")

    def delay_line(self, port: int, to_port: int, delay_ms: float) -> subprocess.Popen[bytes]:
        """A relay at ``remote_ip:port`` to ``remote_ip:to_port`` in the namespace that
        delays every byte ``delay_ms`` each way (stop it with ``terminate``)."""
        script = Path(__file__).with_name("delay_line.py")
        command = [sys.executable, str(script), f"{self.remote_ip}:{port}",
                   f"{self.remote_ip}:{to_port}", str(delay_ms)]  # fmt: skip
        return subprocess.Popen(self.inside(command), stderr=subprocess.DEVNULL)
