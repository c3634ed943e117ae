"""The pod network of the one-machine cluster: a bridge, and one namespace per pod.

The bridge ``fmk0`` lives in the root network namespace with the first address of
the pod network (10.244.0.1/24 by default), so the process that runs the cluster
reaches every pod directly, and the DNS server listens there. Each pod (and each
client) gets a network namespace ``fmk-N`` holding ``lo`` and ``eth0``, one end of
a veth pair whose other end (``fmkvN``) is a port of the bridge, and a default
route through the bridge's address. ``/etc/netns/fmk-N/`` holds the pod's
``resolv.conf`` and ``hosts``: ``ip netns exec`` mounts them over ``/etc/``.

Every name starts with ``fmk``, so that :meth:`PodNetwork.remove_leftovers` can
clear what an interrupted run left behind; a lock file keeps a second cluster off
the machine while one runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from fleetmind.core.errors import ConfigError

logger = logging.getLogger(__name__)

PREFIX = "fmk"
BRIDGE = f"{PREFIX}0"
NETNS_DIR = Path("/etc/netns")
LOCK_FILE = Path("/run/fleetmind-local-cluster.lock")
CLUSTER_DOMAIN = "cluster.local"


def ip(*args: str) -> None:
    """Run ``ip ARGS``; ConfigError with its message when it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConfigError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")


@dataclass(frozen=True)
class Endpoint:
    """A network namespace on the bridge: where a pod or a client runs."""

    netns: str
    """Name for ``ip netns exec``."""
    address: str
    """Its IPv4 address on the pod network."""
    veth: str
    """The bridge-side end of its veth pair."""


class PodNetwork:
    """Bridge, addresses and namespaces; :meth:`close` removes all of them."""

    def __init__(self, cidr: str = "10.244.0.0/24") -> None:
        self.subnet = ipaddress.IPv4Network(cidr)
        if self.subnet.num_addresses < 8:
            raise ConfigError(f"pod network {cidr} is too small; use a /29 or larger")
        hosts = list(self.subnet.hosts())
        self.gateway = str(hosts[0])
        """The bridge's address: default route of every pod, and the DNS server."""
        self._free = [str(h) for h in hosts[1:]]
        self._next_id = 0
        self._lock: IO[str] | None = None
        self._made_netns_dir = False
        self.endpoints: dict[str, Endpoint] = {}

    def open(self) -> PodNetwork:
        """Take the machine-wide lock, clear leftovers, create the bridge."""
        if shutil.which("ip") is None:
            raise ConfigError("the local cluster needs iproute2 (`ip`) and root")
        handle = LOCK_FILE.open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ConfigError(f"another local cluster runs on this machine ({LOCK_FILE})") from None
        self._lock = handle
        self.remove_leftovers()
        self._made_netns_dir = not NETNS_DIR.exists()
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")
        return self

    @staticmethod
    def remove_leftovers() -> None:
        """Delete every ``fmk*`` namespace, link and ``/etc/netns`` folder."""
        listed = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=False
        )
        for line in listed.stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(f"{PREFIX}-"):
                subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
        if NETNS_DIR.is_dir():
            for folder in NETNS_DIR.glob(f"{PREFIX}-*"):
                shutil.rmtree(folder, ignore_errors=True)

    def add(
        self, search_namespace: str, hostname: str, hostname_fqdn: str | None = None
    ) -> Endpoint:
        """A new namespace on the bridge, with ``resolv.conf`` searching ``search_namespace``."""
        if not self._free:
            raise ConfigError(f"pod network {self.subnet} has no address left")
        address = self._free.pop(0)
        self._next_id += 1
        endpoint = Endpoint(f"{PREFIX}-{self._next_id}", address, f"{PREFIX}v{self._next_id}")
        self.endpoints[endpoint.netns] = endpoint
        ns = endpoint.netns
        ip("netns", "add", ns)
        ip("link", "add", endpoint.veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("link", "set", endpoint.veth, "master", BRIDGE, "up")
        ip("-n", ns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "route", "add", "default", "via", self.gateway)
        self._write_etc(endpoint, search_namespace, hostname, hostname_fqdn)
        return endpoint

    def _write_etc(
        self, endpoint: Endpoint, namespace: str, hostname: str, fqdn: str | None
    ) -> None:
        folder = NETNS_DIR / endpoint.netns
        folder.mkdir(parents=True, exist_ok=True)
        search = f"{namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}"
        (folder / "resolv.conf").write_text(
            f"nameserver {self.gateway}\nsearch {search}\noptions ndots:5\n"
        )
        names = f"{fqdn} {hostname}" if fqdn else hostname
        (folder / "hosts").write_text(
            f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"{endpoint.address}\t{names}\n"
        )

    def remove(self, endpoint: Endpoint) -> None:
        """Delete the namespace (and with it its veth pair) and its ``/etc/netns`` folder."""
        if self.endpoints.pop(endpoint.netns, None) is None:
            return
        subprocess.run(["ip", "netns", "del", endpoint.netns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", endpoint.veth], capture_output=True, check=False)
        shutil.rmtree(NETNS_DIR / endpoint.netns, ignore_errors=True)
        # not reused at once: a client may still hold a connection to the old pod
        self._free.append(endpoint.address)

    @property
    def opened(self) -> bool:
        """Whether this network holds the machine's lock (:meth:`open` got that far)."""
        return self._lock is not None

    def close(self) -> None:
        """Remove every namespace and the bridge; release the lock."""
        if self._lock is None:
            return  # another cluster's network, or none: nothing here is ours
        for endpoint in list(self.endpoints.values()):
            self.remove(endpoint)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
        if self._made_netns_dir:
            with contextlib.suppress(OSError):
                NETNS_DIR.rmdir()
        self._lock.close()
        self._lock = None
