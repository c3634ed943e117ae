"""The one-machine cluster's parts that need no root: selectors, DNS answers, probe
thresholds, the rolling-update steps, pod specs, the autoscaler's arithmetic."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from fleetmind.deploy.local_cluster.autoscaling import desired_replicas, hpa_target, quantity
from fleetmind.deploy.local_cluster.dns import answer
from fleetmind.deploy.local_cluster.manifests import Manifests, selects
from fleetmind.deploy.local_cluster.pod_spec import Image, PodInputs, PodMeta, container_specs
from fleetmind.deploy.local_cluster.probes import Probe, ProbeWorker, parse_probe
from fleetmind.deploy.local_cluster.workloads import DeploymentController, StatefulSetController


def test_selectors_match_labels_as_kubernetes_does() -> None:
    labels = {"app": "web", "tier": "front"}
    assert selects({"app": "web"}, labels)  # a Service's plain map
    assert selects({"matchLabels": {"app": "web"}}, labels)
    expression = {"key": "tier", "operator": "In", "values": ["front", "back"]}
    assert selects({"matchExpressions": [expression]}, labels)
    assert not selects({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, labels)
    assert not selects({}, labels)  # a Service without selector has no endpoints
    assert not selects({"app": "db"}, labels)


def _ask(name: str, qtype: str = "A", lookup: Any = None) -> DNSRecord:
    table = {"web.default": ["10.244.0.2", "10.244.0.3"], "idle.default": []}
    reply = answer(DNSRecord.question(name, qtype).pack(), lookup or table.get)
    assert reply is not None
    return DNSRecord.parse(reply)


def test_dns_answers_known_names_with_every_address_and_nothing_else() -> None:
    reply = _ask("web.default")
    assert sorted(str(rr.rdata) for rr in reply.rr) == ["10.244.0.2", "10.244.0.3"]
    assert all(rr.ttl == 1 for rr in reply.rr)
    assert _ask("web.default", "AAAA").header.rcode == RCODE.NOERROR
    assert not _ask("web.default", "AAAA").rr
    assert not _ask("idle.default").rr  # a Service without Ready pods: no address
    assert _ask("nothing.default").header.rcode == RCODE.NXDOMAIN
    assert answer(b"not dns", lambda name: None) is None


def test_an_answer_too_long_for_udp_is_truncated_for_tcp() -> None:
    many = [f"10.244.0.{i}" for i in range(2, 100)]
    reply = _ask("big", lookup=lambda name: many)
    assert reply.header.tc == 1
    assert not reply.rr
    assert reply.q.qtype == QTYPE.A


def test_a_probe_needs_its_thresholds_in_a_row() -> None:
    results = iter([False, True, True, False, False, False])
    seen: list[bool] = []
    done = threading.Event()
    probe = Probe("tcpSocket", 1, period_s=0.001, success_threshold=2, failure_threshold=3)

    def check() -> bool:
        value = next(results, None)
        if value is None:
            done.set()
            return False
        return value

    worker = ProbeWorker("t", probe, check, seen.append, initially=False)
    assert done.wait(10)
    worker.stop()
    assert seen == [True, False]  # 2 successes turn it on, 3 failures off


def test_probes_take_kubernetes_defaults_and_port_names() -> None:
    probe = parse_probe({"httpGet": {"path": "/ready", "port": "http"}}, {"http": 8080})
    assert probe == Probe("httpGet", 8080, path="/ready")
    assert (probe.period_s, probe.timeout_s, probe.failure_threshold) == (10.0, 1.0, 3)
    grpc = parse_probe({"grpc": {"port": 8001}, "periodSeconds": 2}, {})
    assert grpc is not None
    assert (grpc.kind, grpc.service, grpc.period_s) == ("grpc", "", 2.0)
    assert parse_probe(None, {}) is None


@dataclass(eq=False)
class _Pod:
    name: str
    template_hash: str
    ready: bool = False
    terminating: bool = False
    ready_since: float | None = None
    created_at: float = 0.0
    removed: list[str] = field(default_factory=list)

    def available(self, min_ready_s: float, now: float | None = None) -> bool:
        return (
            self.ready
            and self.ready_since is not None
            and (now or 0) - self.ready_since >= min_ready_s
        )


def _deployment(
    replicas: int, surge: Any, unavailable: Any
) -> tuple[DeploymentController, list[_Pod]]:
    removed: list[_Pod] = []
    obj = {
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": 5,
            "strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
        },
    }

    def spawn(ctl: Any, name: str, template: Any, template_hash: str) -> Any:
        return _Pod(name, template_hash)

    def remove(pod: Any) -> None:
        pod.terminating = True
        removed.append(pod)

    return DeploymentController(obj, spawn, remove), removed  # type: ignore[arg-type]


def _make_available(pods: list[Any], now: float) -> None:
    for pod in pods:
        if not pod.terminating and not pod.ready:
            pod.ready, pod.ready_since = True, now - 5


def test_a_rolling_update_surges_one_pod_and_stops_an_old_one_only_once_it_is_available() -> None:
    ctl, removed = _deployment(2, 1, 0)
    ctl.reconcile(0.0)
    _make_available(ctl.pods, 0.0)
    old = list(ctl.pods)
    ctl.set_template({"metadata": {"labels": {"app": "web", "v": "2"}}, "spec": {"containers": []}})
    ctl.reconcile(10.0)
    assert len(ctl.live()) == 3  # maxSurge 1
    assert not removed  # maxUnavailable 0: the new pod is not available yet
    ctl.pods[-1].ready, ctl.pods[-1].ready_since = True, 9.0
    ctl.reconcile(10.0)  # Ready, but not for minReadySeconds
    assert not removed
    ctl.reconcile(14.0)
    assert len(removed) == 1
    assert removed[0] in old
    assert len(ctl.live()) == 2
    ctl.reconcile(14.0)
    assert len(ctl.live()) == 3  # the next new pod replaces the one stopped
    _make_available(ctl.pods, 20.0)
    ctl.reconcile(20.0)
    ctl.pods = [p for p in ctl.pods if not p.terminating]
    assert {p.template_hash for p in ctl.live()} == {ctl.hash}
    assert len(ctl.live()) == 2
    assert ctl.settled()


def test_a_rolling_update_keeps_old_pods_that_are_ready_but_not_yet_available() -> None:
    # an update right after the first rollout: the old pods serve, but are younger than
    # minReadySeconds; stopping them would leave nothing Ready until the new pods start
    ctl, removed = _deployment(2, 1, 0)
    ctl.reconcile(0.0)
    for pod in ctl.pods:
        pod.ready, pod.ready_since = True, 0.0
    ctl.set_template({"metadata": {"labels": {"app": "web", "v": "2"}}, "spec": {"containers": []}})
    ctl.reconcile(1.0)
    ctl.reconcile(1.0)
    assert not removed
    assert len(ctl.live()) == 3
    ctl.pods[-1].ready, ctl.pods[-1].ready_since = True, 1.0
    ctl.reconcile(6.0)  # the new pod and the old ones are available now: one old pod goes
    assert len(removed) == 1


def test_percentages_round_as_kubernetes_does() -> None:
    ctl, _ = _deployment(10, "25%", "25%")
    assert ctl.budgets() == (3, 2)
    ctl, _ = _deployment(1, 0, 0)
    assert ctl.budgets() == (0, 1)


def test_a_container_gets_its_command_environment_and_volumes(tmp_path: Path) -> None:
    claim = tmp_path / "claim"
    claim.mkdir()
    template = {
        "spec": {
            "terminationGracePeriodSeconds": 7,
            "containers": [
                {
                    "name": "server",
                    "image": "fleetmind",
                    "args": ["serve", "$(MODELS)"],
                    "env": [
                        {"name": "MODELS", "value": "/models"},
                        {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {
                            "name": "TOKEN",
                            "valueFrom": {"secretKeyRef": {"name": "s", "key": "tokens"}},
                        },
                    ],
                    "volumeMounts": [
                        {"name": "models", "mountPath": "/models", "readOnly": True},
                        {"name": "token", "mountPath": "/secrets"},
                    ],
                }
            ],
            "volumes": [
                {"name": "models", "persistentVolumeClaim": {"claimName": "models"}},
                {"name": "token", "secret": {"secretName": "s", "items": [
                    {"key": "tokens", "path": "tokens"}]}},
            ],
        }
    }  # fmt: skip
    inputs = PodInputs(
        tmp_path,
        claims={"models": claim},
        secrets={"s": {"tokens": "abc\n", "other": "x"}},
        default_image=Image(entrypoint=("fleetmind",), env={"HOME": "/home/x"}),
        commands={"fleetmind": ("/usr/bin/python3", "-m", "fleetmind")},
        env={"web": {"EXTRA": "1"}},
        run_as_users=False,
    )
    meta = PodMeta("web-abc", "agents", "uid-1", "10.244.0.9", "web", {}, {}, "web-abc")
    folder = tmp_path / "pod"
    init, (spec,) = container_specs(template, meta, inputs, folder)
    assert init == []
    assert spec.argv == ("/usr/bin/python3", "-m", "fleetmind", "serve", "/models")
    env = spec.env
    assert (env["ME"], env["IP"], env["TOKEN"], env["EXTRA"], env["HOME"]) == (
        "web-abc", "10.244.0.9", "abc\n", "1", "/home/x"
    )  # fmt: skip
    models, token = spec.mounts
    assert (models.source, models.target, models.read_only) == (claim, "/models", True)
    assert (token.source / "tokens").read_text() == "abc\n"
    assert not (token.source / "other").exists()  # only the items asked for
    assert spec.grace_s == 7


def test_a_missing_secret_is_refused_before_the_pod_starts(tmp_path: Path) -> None:
    from fleetmind.core.errors import ConfigError

    secret = {"secretKeyRef": {"name": "absent", "key": "k"}}
    container = {"name": "c", "command": ["true"], "env": [{"name": "T", "valueFrom": secret}]}
    template = {"spec": {"containers": [container]}}
    meta = PodMeta("p", "default", "u", "10.244.0.2", "w", {}, {}, "p")
    with pytest.raises(ConfigError, match="'absent'"):
        container_specs(template, meta, PodInputs(tmp_path, run_as_users=False), tmp_path / "p")


def test_a_statefulset_pod_reads_its_ordinal_from_its_labels(tmp_path: Path) -> None:
    # as kubelet resolves a StatefulSet learner's RANK (Kubernetes 1.28 and later)
    def field(path: str) -> dict[str, Any]:
        return {"fieldRef": {"fieldPath": path}}

    index, pod_name = "apps.kubernetes.io/pod-index", "statefulset.kubernetes.io/pod-name"
    container = {
        "name": "learner",
        "command": ["true"],
        "env": [
            {"name": "RANK", "valueFrom": field(f"metadata.labels['{index}']")},
            {"name": "POD", "valueFrom": field(f"metadata.labels['{pod_name}']")},
        ],
    }
    obj = {
        "kind": "StatefulSet",
        "metadata": {"name": "learner"},
        "spec": {
            "replicas": 2,
            "serviceName": "learner",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": "learner"}},
            "template": {
                "metadata": {"labels": {"app": "learner"}},
                "spec": {"containers": [container]},
            },
        },
    }
    made: list[tuple[str, Any]] = []

    def spawn(ctl: Any, name: str, template: Any, template_hash: str) -> Any:
        made.append((name, template))
        return _Pod(name, template_hash)

    ctl = StatefulSetController(obj, spawn, lambda pod: None)  # type: ignore[arg-type]
    ctl.reconcile(0.0)
    assert [name for name, _ in made] == ["learner-0", "learner-1"]
    for ordinal, (name, template) in enumerate(made):
        labels = template["metadata"]["labels"]
        assert labels["app"] == "learner"  # the selector still selects it
        meta = PodMeta(name, "default", "u", "10.244.0.2", "learner", labels, {}, name)
        _, (spec,) = container_specs(
            template, meta, PodInputs(tmp_path, run_as_users=False), tmp_path / name
        )
        assert (spec.env["RANK"], spec.env["POD"]) == (str(ordinal), name)
    assert index not in ctl.template["metadata"]["labels"]


def test_the_autoscaler_arithmetic() -> None:
    assert quantity("700m") == pytest.approx(0.7)
    assert quantity("2") == 2.0
    assert quantity("1Gi") == 2**30
    assert desired_replicas(1, {"a": 0.9}, 0.7) == 2
    assert desired_replicas(2, {"a": 0.5, "b": 0.5}, 0.7) == 2  # ceil(2 x 0.71)
    assert desired_replicas(2, {"a": 0.72, "b": 0.68}, 0.7) == 2  # within the tolerance
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "spec": {
            "scaleTargetRef": {"name": "web"},
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}],
        },
    }  # fmt: skip
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"resources": {"requests": {"cpu": "2"}}}]}}},
    }
    target = hpa_target(Manifests((hpa, deployment)), "web")
    assert (target.kind, target.metric, target.average) == ("Resource", "cpu", 1.0)
    assert (target.min_replicas, target.max_replicas) == (2, 5)


@dataclass(eq=False)
class _ServedPod:
    address: str
    hostname: str
    ready: bool = True
    terminating: bool = False
    namespace: str = "agents"

    @property
    def meta(self) -> PodMeta:
        labels = {"app": "web"}
        return PodMeta("x", self.namespace, "u", self.address, "w", labels, {}, self.hostname)


def test_service_names_resolve_to_the_ready_pods_they_select() -> None:
    from fleetmind.deploy.local_cluster.services import Services

    pods = [_ServedPod("10.244.0.2", "web-0"), _ServedPod("10.244.0.3", "web-1", ready=False),
            _ServedPod("10.244.0.4", "web-2", namespace="other")]  # fmt: skip
    service = {"metadata": {"name": "web", "namespace": "agents"},
               "spec": {"clusterIP": "None", "selector": {"app": "web"}}}  # fmt: skip
    services = Services([service], lambda: pods)  # type: ignore[arg-type,return-value]
    for name in ("web", "web.agents", "web.agents.svc", "web.agents.svc.cluster.local"):
        assert services.lookup(name) == ["10.244.0.2"], name
    assert services.lookup("web-0.web.agents.svc.cluster.local") == ["10.244.0.2"]
    assert services.lookup("web-1.web.agents") is None  # not Ready
    assert services.lookup("web.other") is None
    assert services.lookup("web.agents.svc.cluster.local.agents.svc.cluster.local") is None
    service["spec"]["publishNotReadyAddresses"] = True
    assert sorted(services.endpoints("web")) == ["10.244.0.2", "10.244.0.3"]


def test_image_paths_a_volume_would_hide_are_mounted_back_read_only(tmp_path: Path) -> None:
    # a checkout under /tmp: the pod's emptyDir at /tmp must not hide its interpreter
    template = {
        "spec": {
            "containers": [
                {"name": "server", "image": "fleetmind",
                 "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]},
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        }
    }  # fmt: skip
    venv, elsewhere = Path("/tmp/checkout/.venv"), Path("/opt/python")
    inputs = PodInputs(tmp_path, run_as_users=False, image_paths=(venv, elsewhere))
    meta = PodMeta("web-abc", "agents", "uid-1", "10.244.0.9", "web", {}, {}, "web-abc")
    _, (spec,) = container_specs(template, meta, inputs, tmp_path / "pod")
    tmp, back = spec.mounts
    assert tmp.target == "/tmp"
    assert (back.source, back.target, back.read_only) == (venv, str(venv), True)
    assert (tmp.source / "checkout" / ".venv").is_dir()  # its mount point, inside the volume
