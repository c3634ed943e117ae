"""A StatefulSet on the one-machine cluster: ordered start, stable names, per-pod claims,
exec and HTTP probes, a liveness failure that restarts the container."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 (ip netns)",
)

START = (
    'echo "$POD_NAME $(hostname)" >> /data/starts && echo "$POD_NAME" > /data/name && '
    f"exec {sys.executable} -m http.server 8080 --bind 0.0.0.0 --directory /data"
)


def _manifests(folder: Path) -> None:
    labels = {"app": "web"}
    statefulset: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "serviceName": "web",
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [
                        {
                            "name": "web",
                            "image": "python:3",
                            "command": ["sh", "-c", START],
                            "env": [
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                }
                            ],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "startupProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
                            "readinessProbe": {
                                "httpGet": {"path": "/name", "port": "http"},
                                "periodSeconds": 1,
                            },
                            "livenessProbe": {
                                "exec": {"command": ["test", "-f", "/data/name"]},
                                "periodSeconds": 1,
                                "failureThreshold": 2,
                            },
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Mi"}},
                    },
                }
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": 8080}]},
    }
    for name, obj in (("statefulset.yaml", statefulset), ("service.yaml", service)):
        (folder / name).write_text(yaml.safe_dump(obj))
    kustomization = {"resources": ["statefulset.yaml", "service.yaml"]}
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Any]:
    from fleetmind.deploy.local_cluster import Image, LocalCluster

    _manifests(tmp_path)
    with LocalCluster(tmp_path, tmp_path / "cluster", default_image=Image(),
                      restart_backoff_s=0.5) as cluster:  # fmt: skip
        cluster.wait_ready(timeout_s=60)
        yield cluster


def _fetch(cluster: Any, url: str) -> str:
    code = f"import urllib.request as u; print(u.urlopen({url!r}, timeout=5).read().decode())"
    client = cluster.run_client([sys.executable, "-c", code], stdout=subprocess.PIPE)
    out, _ = client.communicate(timeout=30)
    return str(out.decode().strip())


def test_pods_start_in_order_with_stable_names_and_their_own_claims(web: Any) -> None:
    from fleetmind.deploy.local_cluster.dns import resolve

    cluster = web
    web0, web1 = sorted(cluster.pods("web"), key=lambda p: p.name)
    assert (web0.name, web1.name) == ("web-0", "web-1")
    assert web0.ready_since is not None
    assert web1.created_at >= web0.ready_since, "web-1 started before web-0 was Ready"
    gateway = cluster.network.gateway
    assert resolve("web-0.web.default.svc.cluster.local", gateway) == [web0.address]
    assert sorted(resolve("web.default", gateway)) == sorted([web0.address, web1.address])
    # by the short name through the search list, from another namespace on the bridge
    assert _fetch(cluster, "http://web-1.web:8080/name") == "web-1"
    claims = cluster.workdir / "claims"
    assert (claims / "data-web-0" / "starts").read_text() == "web-0 web-0\n"

    cluster.delete_pod("web-0")
    cluster.wait_ready(timeout_s=60)
    again = cluster.pod("web-0")
    assert again is not web0
    assert (claims / "data-web-0" / "starts").read_text() == "web-0 web-0\n" * 2
    assert json.dumps(sorted(cluster.endpoints("web"))) == json.dumps(
        sorted([again.address, web1.address])
    )


def test_a_failing_liveness_probe_restarts_the_container(web: Any) -> None:
    cluster = web
    pod = cluster.pod("web-1")
    (cluster.workdir / "claims" / "data-web-1" / "name").unlink()
    cluster.wait_for(lambda: pod.restarts == 1 and pod.ready, 30, "web-1 restarted and Ready")
    starts = (cluster.workdir / "claims" / "data-web-1" / "starts").read_text()
    assert starts == "web-1 web-1\n" * 2
    assert cluster.pod("web-0").restarts == 0
