"""Services of the one-machine cluster: the Ready pods each selects, by name for DNS.

A Service's endpoints are the pods of its namespace that its selector matches
and that are Ready (with ``publishNotReadyAddresses``, every pod not being
deleted). A ClusterIP Service is answered like a headless one: there is no
kube-proxy, so a name resolves to the pods' own addresses and clients balance
themselves. Names, as CoreDNS answers them: ``SVC``, ``SVC.NS``, ``SVC.NS.svc``,
``SVC.NS.svc.cluster.local``, and ``HOST.SVC.NS.svc.cluster.local`` for a pod whose
host name is HOST and subdomain SVC (a StatefulSet's pods). A bare ``SVC`` is
looked up in every namespace (the first by name), which CoreDNS leaves to the
search list.
"""

from __future__ import annotations

from collections.abc import Callable

from fleetmind.core.errors import ConfigError
from fleetmind.deploy.local_cluster.manifests import Obj, namespace_of, selects
from fleetmind.deploy.local_cluster.network import CLUSTER_DOMAIN
from fleetmind.deploy.local_cluster.pod import Pod


class Services:
    """The manifests' Services over the pods that ``pods()`` lists."""

    def __init__(self, services: list[Obj], pods: Callable[[], list[Pod]]) -> None:
        self.by_name = {(namespace_of(s), s["metadata"]["name"]): s for s in services}
        self._pods = pods

    def get(self, name: str, namespace: str | None = None) -> Obj | None:
        """Service ``name`` (in ``namespace``, or the first namespace that has one)."""
        for (ns, svc_name), svc in sorted(self.by_name.items()):
            if svc_name == name and namespace in (None, ns):
                return svc
        return None

    def endpoints(self, name: str, namespace: str | None = None) -> list[str]:
        """Addresses of the Ready pods that Service ``name`` selects."""
        svc = self.get(name, namespace)
        if svc is None:
            raise ConfigError(f"no Service named {name!r}")
        return self.addresses(svc)

    def addresses(self, svc: Obj, hostname: str | None = None) -> list[str]:
        """The endpoints of ``svc`` (only the pod with host name ``hostname``)."""
        namespace = namespace_of(svc)
        selector = svc["spec"].get("selector")
        any_state = bool(svc["spec"].get("publishNotReadyAddresses"))
        return [
            p.address
            for p in self._pods()
            if p.meta.namespace == namespace
            and selects(selector, p.meta.labels)
            and (p.ready or (any_state and not p.terminating))
            and (hostname is None or p.meta.hostname == hostname)
        ]

    def lookup(self, name: str) -> list[str] | None:
        """The A records of ``name`` (lowercase, no final dot); None: NXDOMAIN."""
        for suffix in (f".svc.{CLUSTER_DOMAIN}", ".svc"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        parts = name.split(".")
        if len(parts) in (1, 2):
            svc = self.get(parts[0], parts[1] if len(parts) == 2 else None)
            return None if svc is None else self.addresses(svc)
        if len(parts) == 3:
            svc = self.get(parts[1], parts[2])
            found = None if svc is None else self.addresses(svc, hostname=parts[0])
            return found or None
        return None
