"""Write Kubernetes objects as a kustomization directory, all at once or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from fleetmind.core.errors import ConfigError


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order they were built, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    """Text of several lines (a ConfigMap's file) as a literal block, readable as written."""
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _text)


def dump_yaml(documents: list[Any]) -> str:
    """YAML text of ``documents`` (``---`` between them)."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def write_atomically(out: Path, files: Mapping[str, str], *, force: bool = False) -> None:
    """Create directory ``out`` holding ``files`` (relative path -> text).

    The files are written to a temporary sibling that is then renamed to ``out``, so
    ``out`` is either complete or untouched. An existing non-empty ``out`` is replaced
    only with ``force``.
    """
    out = out.absolute()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"--out {out} exists and is not empty; pass --force to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise ConfigError(f"cannot write under {out.parent}: {exc.strerror}") from None
    try:
        for relative, text in files.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        staging.chmod(0o755)
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_in(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; a previous ``out`` is moved aside first, then removed."""
    old: Path | None = None
    if out.is_dir() and any(out.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.rename(out, old / "tree")
    elif out.is_dir():
        out.rmdir()
    try:
        os.rename(staging, out)
    except OSError:
        if old is not None:  # put the previous tree back
            with contextlib.suppress(OSError):
                os.rename(old / "tree", out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def kustomization(
    resources: list[str],
    namespace: str | None,
    generators: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``kustomization.yaml`` that lists ``resources`` (file names)."""
    doc: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
    }
    if namespace is not None:
        doc["namespace"] = namespace
    doc["resources"] = resources
    if generators:
        doc["configMapGenerator"] = generators
    return doc
