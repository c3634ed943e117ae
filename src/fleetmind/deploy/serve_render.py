"""Every object and file of a served fleet's kustomization (``fleetmind deploy serve``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fleetmind.deploy.dashboard import DASHBOARD_UID, dashboard
from fleetmind.deploy.kustomize import dump_yaml, kustomization, write_atomically
from fleetmind.deploy.pod_parts import TOKEN_KEY, Obj
from fleetmind.deploy.serve_network import (
    client_target,
    disruption_budget,
    network_policy,
    service,
)
from fleetmind.deploy.serve_pod import deployment, model_claim, model_claim_name
from fleetmind.deploy.serve_scaling import (
    ADAPTER_WINDOW,
    adapter_values,
    autoscaler,
    service_monitor,
)
from fleetmind.deploy.serve_spec import ServeDeployment

DASHBOARD_FILE = f"dashboards/{DASHBOARD_UID}.json"
ADAPTER_FILE = "prometheus-adapter-values.yaml"
"""Helm values of the Prometheus Adapter with the rule for the HPA's metric: not a
resource of the kustomization (the rule belongs to the adapter's configuration, in
its own namespace)."""


@dataclass(frozen=True)
class Rendering:
    """The objects (one file each) and the other files of the kustomization."""

    objects: dict[str, Obj]
    """File name -> Kubernetes object."""
    files: dict[str, str]
    """Every file to write, the objects' YAML included."""

    def all_objects(self) -> list[Obj]:
        """The objects in the order kustomize lists them in ``resources``."""
        return list(self.objects.values())


def render_serve(dep: ServeDeployment) -> Rendering:
    """The kustomization of ``dep``: objects as data, then dumped to YAML."""
    candidates: dict[str, Obj | None] = {
        "deployment.yaml": deployment(dep),
        "service.yaml": service(dep),
        "pdb.yaml": disruption_budget(dep),
        "hpa.yaml": autoscaler(dep),
        "networkpolicy.yaml": network_policy(dep),
        "servicemonitor.yaml": service_monitor(dep),
        "model-claim.yaml": model_claim(dep),
    }
    objects = {name: obj for name, obj in candidates.items() if obj is not None}
    generator = {
        "name": f"{dep.config.name}-dashboard",
        "files": [DASHBOARD_FILE],
        "options": {"labels": {"grafana_dashboard": "1"}, "disableNameSuffixHash": True},
    }
    files = {name: dump_yaml([obj]) for name, obj in objects.items()}
    files["kustomization.yaml"] = dump_yaml(
        [kustomization(list(objects), dep.config.namespace, [generator])]
    )
    files[DASHBOARD_FILE] = json.dumps(dashboard(), indent=2) + "\n"
    if "hpa.yaml" in objects:
        files[ADAPTER_FILE] = dump_yaml([adapter_values()])
    files["README.md"] = _readme(dep)
    return Rendering(objects, files)


def referenced_secrets(dep: ServeDeployment) -> dict[str, str]:
    """Secrets the pods mount, which are never rendered: name -> what it must hold."""
    out = {}
    if dep.config.tls_secret is not None:
        out[dep.config.tls_secret] = "type kubernetes.io/tls: tls.crt and tls.key"
    if dep.config.token_secret is not None:
        out[dep.config.token_secret] = f"key {TOKEN_KEY}: accepted bearer tokens, one per line"
    return out


def _readme(dep: ServeDeployment) -> str:
    lines = [
        f"# {dep.config.name}: fleetmind serve on Kubernetes",
        "",
        "Rendered by `fleetmind deploy serve`; see docs/deploy.md of fleetmind.",
        "",
        f"- apply: `kubectl apply -k .`; models go to the claim `{model_claim_name(dep)}` "
        f"({dep.served.kind}: {', '.join(dep.served.models)})",
        f"- clients dial `{client_target(dep)}` with the `round_robin` policy",
    ]
    if dep.config.replicas is None:
        lines.append(
            f"- autoscaling holds each pod's wait (its mean over {ADAPTER_WINDOW}) at "
            f"{dep.config.target_wait_ms:g} ms and its CPU use at {dep.config.target_cpu}; the "
            "wait reaches the HPA through the Prometheus Adapter: `helm upgrade --install "
            "prometheus-adapter prometheus-community/prometheus-adapter -n monitoring "
            f"-f {ADAPTER_FILE} --set prometheus.url=http://PROMETHEUS.monitoring.svc`, then "
            "`kubectl get --raw /apis/custom.metrics.k8s.io/v1beta1` lists it"
        )
    lines.append(f"- Grafana: `{DASHBOARD_FILE}` (also a ConfigMap labelled grafana_dashboard=1)")
    for name, holds in referenced_secrets(dep).items():
        lines.append(f"- Secret `{name}` (not rendered; create it): {holds}")
    return "\n".join(lines) + "\n"


def write_serve(dep: ServeDeployment, out: Path, *, force: bool = False) -> Rendering:
    """Render ``dep`` and write it to ``out`` atomically."""
    rendering = render_serve(dep)
    write_atomically(out, rendering.files, force=force)
    return rendering
