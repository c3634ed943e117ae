"""The objects of a rendered kustomization, as the one-machine cluster reads them.

``kubectl kustomize DIR`` builds the objects when kubectl is on PATH (it needs no
cluster); otherwise the ``resources:`` files of ``kustomization.yaml`` are read as
they are, which is the same for fleetmind's renders (they use no patches, and the
generated ConfigMaps are not run). Every object stays readable in
:attr:`Manifests.objects`; the cluster runs only the kinds in :data:`RUN_KINDS`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleetmind.core.errors import ConfigError

Obj = dict[str, Any]
RUN_KINDS = ("Deployment", "StatefulSet", "Service")
"""Kinds the cluster acts on; the others (HPA, PDB, NetworkPolicy, ...) are only read."""


@dataclass(frozen=True)
class Manifests:
    """Every object of a kustomization, in the order it lists them."""

    objects: tuple[Obj, ...]

    def of_kind(self, kind: str) -> list[Obj]:
        """Objects of ``kind``."""
        return [o for o in self.objects if o.get("kind") == kind]

    def get(self, kind: str, name: str) -> Obj:
        """The object ``kind``/``name``; ConfigError when absent."""
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        raise ConfigError(f"no {kind} named {name!r} in the manifests")


def load(directory: Path, *, kubectl: str | None = None) -> Manifests:
    """The objects that ``kubectl kustomize directory`` builds.

    ``kubectl``: path of kubectl; found on PATH when unset; without one the
    ``resources`` files are read directly (the kustomization's ``namespace`` is
    applied to them, as kustomize does).
    """
    directory = Path(directory)
    if not (directory / "kustomization.yaml").is_file():
        raise ConfigError(f"{directory} has no kustomization.yaml")
    kubectl = kubectl or shutil.which("kubectl")
    if kubectl is not None:
        done = subprocess.run(
            [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise ConfigError(f"kubectl kustomize {directory} failed: {done.stderr.strip()}")
        docs = list(yaml.safe_load_all(done.stdout))
    else:
        docs = _read_resources(directory)
    return Manifests(tuple(d for d in docs if isinstance(d, dict)))


def _read_resources(directory: Path) -> list[Obj]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    namespace = kustomization.get("namespace")
    docs: list[Obj] = []
    for name in kustomization.get("resources", []):
        for doc in yaml.safe_load_all((directory / name).read_text()):
            if not isinstance(doc, dict):
                continue
            if namespace is not None:
                doc.setdefault("metadata", {})["namespace"] = namespace
            docs.append(doc)
    return docs


def namespace_of(obj: Obj) -> str:
    """The object's namespace (``default`` when it names none)."""
    return str(obj.get("metadata", {}).get("namespace") or "default")


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a label selector (``matchLabels``/``matchExpressions``, or a Service's
    plain map) selects ``labels``. An empty or missing selector selects nothing, as
    a Service without selector has no endpoints."""
    if not selector:
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return all(labels.get(k) == v for k, v in selector.items())
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    return all(_matches(e, labels) for e in selector.get("matchExpressions") or [])


def _matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expression["key"], expression["operator"], expression.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    raise ConfigError(f"label selector operator {op!r} is not one of In, NotIn, Exists")
