"""What must hold between the rendered objects, the image and the server."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml
from tests.unit.deploy.conftest import by_kind

from fleetmind.deploy.dashboard import dashboard, series_names
from fleetmind.deploy.local_cluster.autoscaling import quantity
from fleetmind.deploy.serve_pod import model_claim_name
from fleetmind.deploy.serve_render import Rendering, referenced_secrets
from fleetmind.deploy.serve_spec import ServeDeployment
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.metrics import ServeMetrics

Case = tuple[ServeDeployment, Rendering]


def _pod(rendering: Rendering) -> dict:  # type: ignore[type-arg]
    return by_kind(rendering)("Deployment")["spec"]["template"]


def _server(rendering: Rendering) -> dict:  # type: ignore[type-arg]
    (container,) = _pod(rendering)["spec"]["containers"]
    return container


def test_probes_use_the_container_ports(rendered: Case) -> None:
    container = _server(rendered[1])
    numbers = {p["containerPort"] for p in container["ports"]}
    names = {p["name"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container[probe]
        if "grpc" in spec:
            assert spec["grpc"]["port"] in numbers
        else:
            assert spec["tcpSocket"]["port"] in names


def test_probes_are_native_grpc_without_tls(rendered: Case) -> None:
    dep, rendering = rendered
    container = _server(rendering)
    if dep.config.tls_secret is None:
        assert container["readinessProbe"]["grpc"]["service"] == "inference.GRPCInferenceService"
        assert container["startupProbe"]["grpc"]["port"] == int(_env(rendering)["FLEETMIND_PORT"])


def test_selectors_match_the_pod_labels(rendered: Case) -> None:
    _, rendering = rendered
    find = by_kind(rendering)
    pod_labels = _pod(rendering)["metadata"]["labels"]
    service = find("Service")
    selectors = [
        find("Deployment")["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"],
        find("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        find("NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        *(
            c["labelSelector"]["matchLabels"]
            for c in _pod(rendering)["spec"]["topologySpreadConstraints"]
        ),
    ]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    monitor = find("ServiceMonitor")["spec"]["selector"]["matchLabels"]
    assert monitor.items() <= service["metadata"]["labels"].items()
    assert service["spec"]["clusterIP"] == "None"  # headless: one address per pod
    service_ports = {p["targetPort"] for p in service["spec"]["ports"]}
    assert service_ports <= {p["name"] for p in _server(rendering)["ports"]}
    monitor_port = find("ServiceMonitor")["spec"]["endpoints"][0]["port"]
    assert monitor_port in {p["name"] for p in service["spec"]["ports"]}


def test_the_disruption_budget_never_blocks_a_drain(rendered: Case) -> None:
    dep, rendering = rendered
    find = by_kind(rendering)
    pdb = find("PodDisruptionBudget")["spec"]
    assert "minAvailable" not in pdb
    smallest = dep.config.replicas or find("HorizontalPodAutoscaler")["spec"]["minReplicas"]
    largest = dep.config.replicas or find("HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    for healthy in range(1, largest + 1):  # kubectl drain: evictions allowed with all Ready
        assert min(pdb["maxUnavailable"], healthy) >= 1
    assert smallest >= 2 or dep.config.replicas is not None  # the default keeps serving


def _exported_names() -> set[str]:
    """Every series name the server's metrics page shows once it has served a call."""
    metrics = ServeMetrics()
    metrics.started("m")
    metrics.record("m", "OK", 0.01)
    metrics.record("m", "UNAVAILABLE", 0.01, started=False)
    metrics.batch_observer("m")(4, [0.001])
    metrics.waited(0.002)
    return {s.name for family in metrics.registry.collect() for s in family.samples}


def test_the_autoscaler_scales_on_the_wait_the_server_exports(rendered: Case) -> None:
    dep, rendering = rendered
    if dep.config.replicas is not None:
        assert "prometheus-adapter-values.yaml" not in rendering.files
        return
    hpa = by_kind(rendering)("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["name"] == by_kind(rendering)("Deployment")["metadata"]["name"]
    wait, cpu = hpa["metrics"]
    assert wait["type"] == "Pods"
    name = wait["pods"]["metric"]["name"]
    assert name in _exported_names()  # under that exact name, with no labels to select
    assert "selector" not in wait["pods"]["metric"]
    target = wait["pods"]["target"]
    assert target["type"] == "AverageValue"
    seconds = quantity(target["averageValue"])
    assert seconds == pytest.approx(dep.config.target_wait_ms / 1000)
    # replicas are added before the servers start refusing calls
    assert 0 < seconds < ServeConfig.max_wait_ms / 1000
    env = _env(rendering)
    assert "FLEETMIND_MAX_WAIT_MS" not in env  # the servers shed at ServeConfig's default
    # CPU, second: one replica is one Python process, which saturates near one core
    assert (cpu["type"], cpu["resource"]["name"]) == ("Resource", "cpu")
    assert cpu["resource"]["target"]["averageValue"] == dep.config.target_cpu
    assert quantity(cpu["resource"]["target"]["averageValue"]) < 1


def _duration_s(text: str) -> float:
    """A Prometheus duration of one unit (``15s``, ``1m``) in seconds."""
    return float(text[:-1]) * {"s": 1, "m": 60}[text[-1]]


def test_the_adapter_rule_serves_the_autoscalers_metric(rendered: Case) -> None:
    dep, rendering = rendered
    if dep.config.replicas is not None:
        return
    hpa = by_kind(rendering)("HorizontalPodAutoscaler")["spec"]
    name = hpa["metrics"][0]["pods"]["metric"]["name"]
    kustomization = yaml.safe_load(rendering.files["kustomization.yaml"])
    assert "prometheus-adapter-values.yaml" not in kustomization["resources"]
    values = yaml.safe_load(rendering.files["prometheus-adapter-values.yaml"])
    (rule,) = values["rules"]["custom"]
    series, selector = rule["seriesQuery"].split("{", 1)
    assert series == name
    assert 'pod!=""' in selector
    assert 'namespace!=""' in selector
    assert re.fullmatch(rule["name"]["matches"], series)
    assert rule["name"]["as"] == name  # what the HPA asks the custom metrics API for
    overrides = rule["resources"]["overrides"]
    assert overrides["pod"] == {"resource": "pod"}
    assert overrides["namespace"] == {"resource": "namespace"}
    # the series the adapter found, per pod, averaged over a window of several scrapes
    assert rule["metricsQuery"].startswith("max(avg_over_time(<<.Series>>{<<.LabelMatchers>>}[")
    assert rule["metricsQuery"].endswith(" by (<<.GroupBy>>)")
    window = _duration_s(rule["metricsQuery"].split("[", 1)[1].split("]", 1)[0])
    scrape = _duration_s(by_kind(rendering)("ServiceMonitor")["spec"]["endpoints"][0]["interval"])
    assert window >= 4 * scrape
    assert "prometheus-adapter-values.yaml" in rendering.files["README.md"]


def test_the_dashboard_queries_only_exported_metrics() -> None:
    assert series_names() <= _exported_names()
    assert len(dashboard()["panels"]) >= 6


def _env(rendering: Rendering) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _server(rendering)["env"]}


def test_every_variable_is_an_option_serve_reads(rendered: Case) -> None:
    options = {f.name for f in dataclasses.fields(ServeConfig)}
    for name in _env(rendered[1]):
        assert name.startswith("FLEETMIND_")
        assert name.removeprefix("FLEETMIND_").lower() in options, name


def test_connections_age_out_so_clients_find_new_replicas(rendered: Case) -> None:
    age = float(_env(rendered[1])["FLEETMIND_MAX_CONNECTION_AGE_S"])
    assert 0 < age <= 60  # a new replica gets load from existing clients within a minute


def test_the_pod_outlives_the_servers_drain(rendered: Case) -> None:
    rendering = rendered[1]
    grace = float(_env(rendering)["FLEETMIND_GRACE_S"])
    assert _pod(rendering)["spec"]["terminationGracePeriodSeconds"] > grace + 5


def test_the_pod_is_locked_down(rendered: Case) -> None:
    pod = _pod(rendered[1])["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    ctx = _server(rendered[1])["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    resources = _server(rendered[1])["resources"]
    assert set(resources) == {"requests", "limits"}
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_every_reference_is_rendered_or_documented(rendered: Case) -> None:
    dep, rendering = rendered
    rendered_names = {(o["kind"], o["metadata"]["name"]) for o in rendering.all_objects()}
    documented = referenced_secrets(dep)
    for volume in _pod(rendering)["spec"]["volumes"]:
        if "secret" in volume:
            name = volume["secret"]["secretName"]
            assert ("Secret", name) not in rendered_names  # never rendered with its values
            assert name in documented
            assert name in rendering.files["README.md"]
        if "configMap" in volume:
            assert ("ConfigMap", volume["configMap"]["name"]) in rendered_names
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            assert claim == model_claim_name(dep)
            assert ("PersistentVolumeClaim", claim) in rendered_names or (
                dep.config.model_claim == claim and claim in rendering.files["README.md"]
            )
    for env in _server(rendering)["env"]:
        assert "valueFrom" not in env  # every secret arrives as a mounted file
    assert all(o["kind"] != "Secret" for o in rendering.all_objects())


def test_a_run_keeps_its_model_name(rendered: Case) -> None:
    dep, rendering = rendered
    if dep.served.kind == "run":
        assert _env(rendering)["FLEETMIND_MODEL_NAME"] == dep.served.models[0]
    else:
        assert "FLEETMIND_MODEL_NAME" not in _env(rendering)
