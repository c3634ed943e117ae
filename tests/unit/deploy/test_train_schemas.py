"""Every object of a training fleet validates against Kubernetes 1.29-1.33."""

from __future__ import annotations

import shutil
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from tests.unit.deploy.test_serve_schemas import KUBERNETES_VERSIONS, kustomize, validate

from fleetmind.deploy.train_render import TrainRendering
from fleetmind.deploy.train_spec import TrainDeployment

Case = tuple[TrainDeployment, TrainRendering]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid(trained: Case, version: str) -> None:
    for obj in trained[1].all_objects():  # the reader Job too
        validate(obj, version)


def test_a_misspelt_field_fails_validation(trained: Case) -> None:
    for obj in trained[1].all_objects():
        broken = yaml.safe_load(yaml.safe_dump(obj))
        broken["metadata"]["nmae"] = "x"
        with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
            validate(broken, "1.33.0")


def test_the_files_are_the_objects(trained: Case) -> None:
    _, rendering = trained
    for name, obj in {**rendering.objects, **rendering.apart}.items():
        assert yaml.safe_load(rendering.files[name]) == obj
    listed = yaml.safe_load(rendering.files["kustomization.yaml"])["resources"]
    assert listed == list(rendering.objects)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_what_was_built(trained: Case, tmp_path: Path) -> None:
    dep, rendering = trained
    docs = kustomize(rendering.files, tmp_path)
    assert sorted(d["kind"] for d in docs) == sorted(o["kind"] for o in rendering.objects.values())
    for doc in docs:
        if dep.config.namespace is not None:
            assert doc["metadata"]["namespace"] == dep.config.namespace
        validate(doc, "1.33.0")
