"""Rendered fleets for the deploy tests: serving a run or a repository; training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fleetmind.cli.deploy_cmd import train_deployment
from fleetmind.cli.main import build_parser
from fleetmind.deploy.serve_render import Rendering, render_serve
from fleetmind.deploy.serve_spec import ServeDeployConfig, ServeDeployment, checked
from fleetmind.deploy.train_render import TrainRendering, render_train
from fleetmind.deploy.train_spec import TrainDeployment
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


TRAIN_VARIANTS: dict[str, list[str]] = {
    "one learner": ["CartPole-v1", "--token-secret", "train-tokens"],
    "several learners in a namespace": [
        "CartPole-v1",
        "--actors", "5", "--learners", "3", "--namespace", "agents", "--name", "pole",
        "--storage-class", "fast-ssd", "--storage-size", "20Gi", "--token-secret", "t",
    ],
    "several async learners with tls": [
        "CartPole-v1",
        "--algo", "impala", "--mode", "async", "--actors", "2", "--learners", "2",
        "--tls-secret", "learner-tls", "--token-secret", "t", "--envs-per-actor", "4",
        "--max-policy-lag", "2", "--steps", "20000",
    ],
    "insecure, own image": [
        "CartPole-v1", "--insecure", "--image", "ghcr.io/org/fleetmind:0.1.0", "--actors", "3",
    ],
}  # fmt: skip


def train_deployment_of(argv: list[str]) -> TrainDeployment:
    """What ``fleetmind deploy train ARGV`` would render."""
    args = build_parser().parse_args(["deploy", "train", *argv])
    deployment: TrainDeployment = train_deployment(args)
    return deployment


@pytest.fixture(params=sorted(TRAIN_VARIANTS))
def trained(request: pytest.FixtureRequest) -> tuple[TrainDeployment, TrainRendering]:
    """Every training variant, rendered: one learner and several."""
    dep = train_deployment_of(TRAIN_VARIANTS[request.param])
    return dep, render_train(dep)
