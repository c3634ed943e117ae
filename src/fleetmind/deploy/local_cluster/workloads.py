"""Controllers of Deployments and StatefulSets: how many pods, which template, which order.

Each :meth:`reconcile` looks at the workload's pods and takes one step toward what
its spec asks, as kube-controller-manager does; the cluster calls it whenever a
pod changes and at least once a second.

- **Deployment**: pods named ``NAME-HASH-xxxxx``, HASH from the pod template. When
  the template changes (:meth:`DeploymentController.set_template`), a rolling update
  starts at most ``maxSurge`` pods beyond the size and keeps at least ``size -
  maxUnavailable`` pods available (Ready for ``minReadySeconds``), so an old pod
  is stopped only once a new one is available. ``Recreate`` stops every old pod
  first. A deleted pod is replaced at once, as its ReplicaSet would.
- **StatefulSet**: pods ``NAME-0 .. NAME-(n-1)`` with host name ``NAME-i``, the
  labels Kubernetes sets (``apps.kubernetes.io/pod-index``: i, as 1.28 and later
  do; ``statefulset.kubernetes.io/pod-name``), the DNS name
  ``NAME-i.SERVICE.NS.svc.cluster.local`` (``serviceName``), one claim per
  volume claim template and pod (``TEMPLATE-NAME-i``, kept across restarts);
  ``OrderedReady`` starts pod i once pods 0..i-1 are Ready and removes the highest
  ordinal first; ``Parallel`` starts them all. A template change replaces pods from
  the highest ordinal down, one at a time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import secrets
from collections.abc import Callable

from fleetmind.deploy.local_cluster.manifests import Obj, namespace_of
from fleetmind.deploy.local_cluster.pod import Pod

POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
"""A StatefulSet pod's ordinal, as a label (Kubernetes 1.28 and later)."""
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
"""A StatefulSet pod's name, as a label."""

Spawn = Callable[["Controller", str, Obj, str], Pod]
"""Create and start a pod: (controller, pod name, template, template hash) -> Pod."""
Remove = Callable[[Pod], object]
"""Delete a pod (mark it terminating, stop it in the background)."""


def template_hash(template: Obj) -> str:
    """A short, stable hash of a pod template (``pod-template-hash``)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return digest[:10]


class Controller:
    """What both controllers share: the object, its template, its pods."""

    def __init__(self, obj: Obj, spawn: Spawn, remove: Remove) -> None:
        self.obj = obj
        self.kind: str = obj["kind"]
        self.name: str = obj["metadata"]["name"]
        self.namespace = namespace_of(obj)
        spec = obj["spec"]
        self.replicas = int(spec.get("replicas", 1))
        self.selector: Obj = spec.get("selector") or {}
        self.template: Obj = copy.deepcopy(spec["template"])
        self.hash = template_hash(self.template)
        self.pods: list[Pod] = []
        self._spawn = spawn
        self._remove = remove

    def live(self) -> list[Pod]:
        """Pods that are not terminating."""
        return [p for p in list(self.pods) if not p.terminating]

    def set_template(self, template: Obj) -> None:
        """A new pod template: the next reconciles roll it out."""
        self.template = copy.deepcopy(template)
        self.hash = template_hash(self.template)

    def settled(self) -> bool:
        """Every pod has the current template, the size is reached, all are Ready."""
        live = self.live()
        return (
            len(live) == self.replicas
            and all(p.template_hash == self.hash and p.ready for p in live)
            and all(not p.terminating for p in list(self.pods))
        )

    def reconcile(self, now: float) -> float | None:
        """One step toward the spec; returns when to look again (None: on the next change)."""
        raise NotImplementedError


class DeploymentController(Controller):
    """A Deployment (its ReplicaSets folded in)."""

    def __init__(self, obj: Obj, spawn: Spawn, remove: Remove) -> None:
        super().__init__(obj, spawn, remove)
        spec = obj["spec"]
        self.min_ready_s = float(spec.get("minReadySeconds", 0))
        strategy = spec.get("strategy") or {}
        self.recreate = strategy.get("type") == "Recreate"
        rolling = strategy.get("rollingUpdate") or {}
        self._surge: int | str = rolling.get("maxSurge", "25%")
        self._unavailable: int | str = rolling.get("maxUnavailable", "25%")

    def budgets(self) -> tuple[int, int]:
        """(maxSurge, maxUnavailable) in pods; surge rounds up, unavailable down."""
        surge = _scaled(self._surge, self.replicas, math.ceil)
        unavailable = _scaled(self._unavailable, self.replicas, math.floor)
        if surge == 0 and unavailable == 0:
            unavailable = 1  # as Kubernetes does, so that a rollout can proceed
        return surge, unavailable

    def reconcile(self, now: float) -> float | None:
        live = self.live()
        new = [p for p in live if p.template_hash == self.hash]
        old = [p for p in live if p.template_hash != self.hash]
        if not old:
            self._resize(new)
            return None
        if self.recreate:
            for pod in old:
                self._remove(pod)
            return None
        surge, unavailable = self.budgets()
        for _ in range(min(self.replicas + surge - len(live), self.replicas - len(new))):
            self._create()
        live = self.live()
        min_available = self.replicas - unavailable
        # as the deployment controller scales old pods down: never below the pods that
        # must stay available plus the new ones that are not available yet (a young old
        # pod, Ready for less than minReadySeconds, is unavailable but still serves)
        new_unavailable = sum(
            not p.available(self.min_ready_s, now) for p in live if p.template_hash == self.hash
        )
        budget = len(live) - min_available - new_unavailable
        available = sum(p.available(self.min_ready_s, now) for p in live)
        # old pods that are not available go first: removing them costs no availability
        for pod in sorted(old, key=lambda p: p.available(self.min_ready_s, now)):
            if budget <= 0:
                break
            if pod.available(self.min_ready_s, now):
                if available <= min_available:
                    break
                available -= 1
            self._remove(pod)
            budget -= 1
        return _next_available(new, self.min_ready_s)

    def _resize(self, pods: list[Pod]) -> None:
        for _ in range(self.replicas - len(pods)):
            self._create()
        extra = len(pods) - self.replicas
        # not Ready first, then the youngest, as a ReplicaSet picks
        for pod in sorted(pods, key=lambda p: (p.ready, -p.created_at))[: max(extra, 0)]:
            self._remove(pod)

    def _create(self) -> None:
        name = f"{self.name}-{self.hash}-{secrets.token_hex(3)[:5]}"
        self.pods.append(self._spawn(self, name, self.template, self.hash))


class StatefulSetController(Controller):
    """A StatefulSet: stable names, ordered start, per-pod claims."""

    def __init__(self, obj: Obj, spawn: Spawn, remove: Remove) -> None:
        super().__init__(obj, spawn, remove)
        spec = obj["spec"]
        self.service_name: str | None = spec.get("serviceName")
        self.ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        self.claim_templates = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])]

    def pod_template(self, ordinal: int) -> Obj:
        """The template of pod ``ordinal``: its labels, host name, subdomain, its claims
        as volumes."""
        template = copy.deepcopy(self.template)
        pod_spec = template.setdefault("spec", {})
        pod_name = f"{self.name}-{ordinal}"
        pod_labels = template.setdefault("metadata", {}).setdefault("labels", {})
        pod_labels[POD_INDEX_LABEL] = str(ordinal)  # what the downward API reads as a rank
        pod_labels[POD_NAME_LABEL] = pod_name  # selects one pod (a Service per pod)
        pod_spec["hostname"] = pod_name
        if self.service_name:
            pod_spec["subdomain"] = self.service_name
        volumes = pod_spec.setdefault("volumes", [])
        for claim in self.claim_templates:
            volumes.append(
                {"name": claim, "persistentVolumeClaim": {"claimName": f"{claim}-{pod_name}"}}
            )
        return template

    def reconcile(self, now: float) -> float | None:
        by_ordinal = {int(p.name.rsplit("-", 1)[1]): p for p in self.pods}
        # pods beyond the size go, the highest first (one at a time when ordered)
        beyond = sorted((i for i in by_ordinal if i >= self.replicas), reverse=True)
        for ordinal in beyond[:1] if self.ordered else beyond:
            if not by_ordinal[ordinal].terminating:
                self._remove(by_ordinal[ordinal])
        if self.ordered and beyond:
            return None
        for ordinal in range(self.replicas):
            pod = by_ordinal.get(ordinal)
            if pod is None:
                self.pods.append(self._spawn(self, f"{self.name}-{ordinal}",
                                             self.pod_template(ordinal), self.hash))  # fmt: skip
                if self.ordered:
                    return None
            elif self.ordered and not pod.ready:
                return None
        stale = [p for i, p in sorted(by_ordinal.items(), reverse=True)
                 if i < self.replicas and p.template_hash != self.hash]  # fmt: skip
        if stale and all(p.ready for p in self.pods):
            self._remove(stale[0])  # re-created with the new template once it is gone
        return None


def _scaled(value: int | str, replicas: int, rounding: Callable[[float], int]) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return int(rounding(replicas * float(value[:-1]) / 100))
    return int(value)


def _next_available(pods: list[Pod], min_ready_s: float) -> float | None:
    """When the earliest Ready but not yet available pod becomes available."""
    times = [
        p.ready_since + min_ready_s
        for p in pods
        if p.ready and p.ready_since is not None and min_ready_s > 0
    ]
    return min(times) if times else None


def controller_for(obj: Obj, spawn: Spawn, remove: Remove) -> Controller:
    """The controller of a Deployment or StatefulSet."""
    if obj["kind"] == "StatefulSet":
        return StatefulSetController(obj, spawn, remove)
    return DeploymentController(obj, spawn, remove)
