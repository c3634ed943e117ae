"""Rendered serving fleets for the deploy tests: a run directory and a model repository."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleetmind.deploy.serve_render import Rendering, render_serve
from fleetmind.deploy.serve_spec import ServeDeployConfig, ServeDeployment, checked
from fleetmind.serve.testing import write_toy_checkpoint


@pytest.fixture(scope="session")
def model_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A run directory and a repository of two models."""
    root = tmp_path_factory.mktemp("models")
    write_toy_checkpoint(root / "cartpole", seed=1, version=1)
    for model, version in (("pick", "1"), ("pick", "2"), ("route", "1")):
        write_toy_checkpoint(root / "repo" / model / version, seed=2, version=int(version))
    return {"run": root / "cartpole", "repository": root / "repo"}


VARIANTS: dict[str, dict[str, Any]] = {
    "autoscaled run": {"name": "cartpole", "token_secret": "cartpole-tokens"},
    "fixed repository in a namespace": {
        "name": "fleet",
        "namespace": "agents",
        "replicas": 3,
        "image": "ghcr.io/org/fleetmind:0.1.0",
        "insecure": True,
    },
    "tls and tokens": {
        "name": "secure",
        "tls_secret": "serve-tls",
        "token_secret": "serve-tokens",
        "min_replicas": 3,
        "max_replicas": 6,
        "cpu": "500m",
    },
    "existing claim": {
        "name": "shared",
        "model_claim": "runs",
        "grace_s": 30.0,
        "token_secret": "shared-tokens",
    },
}


@pytest.fixture(params=sorted(VARIANTS))
def rendered(
    request: pytest.FixtureRequest, model_paths: dict[str, Path]
) -> tuple[ServeDeployment, Rendering]:
    """Every variant, rendered."""
    settings = VARIANTS[request.param]
    path = model_paths["repository" if "repository" in request.param else "run"]
    dep = checked(ServeDeployConfig(**settings), path)
    return dep, render_serve(dep)


def by_kind(rendering: Rendering) -> Callable[[str], dict[str, Any]]:
    """Look up the one rendered object of a kind."""

    def find(kind: str) -> dict[str, Any]:
        (obj,) = [o for o in rendering.all_objects() if o["kind"] == kind]
        return obj

    return find
