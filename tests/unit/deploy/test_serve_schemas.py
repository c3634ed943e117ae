"""Every rendered object validates against Kubernetes 1.29-1.33 and the vendored CRDs."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from fleetmind.deploy.serve_render import Rendering
from fleetmind.deploy.serve_spec import ServeDeployment

KUBERNETES_VERSIONS = ("1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0")
CRDS = Path(__file__).parent / "crds"


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema of every vendored CRD."""
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            out[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return out


def validate(obj: dict[str, Any], version: str) -> None:
    """Raise when ``obj`` is invalid for Kubernetes ``version`` (a CRD's schema for CRs)."""
    custom = crd_schemas().get((obj["apiVersion"], obj["kind"]))
    if custom is not None:
        jsonschema.validate(obj, custom)
        return
    kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid(rendered: tuple[ServeDeployment, Rendering], version: str) -> None:
    _, rendering = rendered
    for obj in rendering.all_objects():
        validate(obj, version)


def test_vendored_crds_are_valid_crds() -> None:
    for path in CRDS.glob("*.yaml"):
        kubernetes_validate.validate(yaml.safe_load(path.read_text()), "1.29.0", strict=True)


def test_a_misspelt_field_fails_validation(rendered: tuple[ServeDeployment, Rendering]) -> None:
    _, rendering = rendered
    for obj in rendering.all_objects():
        broken = yaml.safe_load(yaml.safe_dump(obj))
        broken["spec"]["selectr"] = {}
        with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
            validate(broken, "1.33.0")


def kustomize(files: dict[str, str], folder: Path) -> list[Any]:
    """What ``kubectl kustomize`` makes of the rendered ``files`` written under ``folder``."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    out = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=True
    ).stdout
    return list(yaml.safe_load_all(out))


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_what_was_built(
    rendered: tuple[ServeDeployment, Rendering], tmp_path: Path
) -> None:
    dep, rendering = rendered
    docs = kustomize(rendering.files, tmp_path)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted([o["kind"] for o in rendering.all_objects()] + ["ConfigMap"])
    for doc in docs:
        if dep.config.namespace is not None:
            assert doc["metadata"]["namespace"] == dep.config.namespace
        if doc["kind"] == "ConfigMap":
            assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"
        validate(doc, "1.33.0")
