"""Explained requests over gRPC and HTTP: attributions beside the outputs, refusals
for models without gradients, and plain requests unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fleetmind.algos.registry import get_algorithm
from fleetmind.cli.main import main
from fleetmind.core.errors import InvalidInputError
from fleetmind.core.spaces import SpaceSpec
from fleetmind.serve.attribution import Attributor
from fleetmind.serve.client import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.model import LoadedModel
from fleetmind.serve.testing import ServerThread, toy_loader, write_toy_checkpoint

from .http_calls import infer_body, post_json

OBS = np.random.default_rng(7).normal(size=(3, 4)).astype(np.float32)
BOX = SpaceSpec("box", (4,), "float32", low=(-np.inf,) * 4, high=(np.inf,) * 4)


def _ppo_agent() -> Any:
    from fleetmind.core.agent import Agent

    spec = get_algorithm("ppo")
    learner: Any = spec.build(spec.config_cls(), BOX, SpaceSpec("discrete", (), "int64", n=2), 0)
    torch.manual_seed(4)
    with torch.no_grad():
        for param in learner.net.actor.parameters():
            param.normal_(0.0, 0.6)
    return Agent(learner.inference_policy(), BOX, SpaceSpec("discrete", (), "int64", n=2))


def loader(path: Path) -> LoadedModel:
    """``ppo/*``: a PPO policy (explainable); anything else: the toy lookup-free net,
    which has no differentiable score (it stands for tabular and bandit models)."""
    if path.parent.name == "ppo":
        return LoadedModel(_ppo_agent(), "1", "fleetmind_ppo")
    return toy_loader(path)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    root = tmp_path_factory.mktemp("repo")
    for name in ("ppo", "lookup"):
        write_toy_checkpoint(root / name / "1", seed=3)
    config = ServeConfig(host="127.0.0.1", port=0, http_port=0, reload_interval_s=None)
    with ServerThread(root, config, loader) as running:
        yield running


EXPLAIN_TIMEOUT_S = 120.0


def _expected() -> np.ndarray:
    attributor = Attributor.of(_ppo_agent())
    assert isinstance(attributor, Attributor)
    return attributor.attribute(OBS).attributions


def test_grpc_explained_request_carries_attributions(server: ServerThread) -> None:
    # the explainer runs below any other work (SCHED_IDLE): beside busy processes its
    # first answer (start, imports) can take many times the SDK's default 5 s
    with Client(f"127.0.0.1:{server.port}", timeout_s=EXPLAIN_TIMEOUT_S) as client:
        plain = client.infer("ppo", OBS)
        explained = client.infer("ppo", OBS, explain=True)
        named = client.infer("ppo", OBS, explain=True, outputs=("action",))
    assert "attributions" not in plain
    assert list(explained) == ["action", "action_probs", "value", "attributions"]
    np.testing.assert_array_equal(explained["action"], plain["action"])
    assert explained["attributions"].shape == OBS.shape
    assert explained["attributions"].dtype == np.float32
    np.testing.assert_allclose(explained["attributions"], _expected(), rtol=1e-5, atol=1e-6)
    assert list(named) == ["action", "attributions"]


def test_http_explained_request_carries_attributions(server: ServerThread) -> None:
    port = server.server.http_port
    assert port is not None
    body = infer_body(OBS, parameters={"explain": True})
    status, reply = post_json(port, "/v2/models/ppo/infer", body, timeout=EXPLAIN_TIMEOUT_S)
    assert status == 200, reply
    outputs = {o["name"]: o for o in reply["outputs"]}
    assert outputs["attributions"]["shape"] == [3, 4]
    assert outputs["attributions"]["datatype"] == "FP32"
    got = np.asarray(outputs["attributions"]["data"], dtype=np.float32).reshape(3, 4)
    np.testing.assert_allclose(got, _expected(), rtol=1e-5, atol=1e-6)
    status, reply = post_json(port, "/v2/models/ppo/infer", infer_body(OBS))
    assert status == 200
    assert "attributions" not in {o["name"] for o in reply["outputs"]}


def test_models_without_gradients_refuse_and_the_server_stays_up(server: ServerThread) -> None:
    port = server.server.http_port
    assert port is not None
    with Client(f"127.0.0.1:{server.port}", timeout_s=EXPLAIN_TIMEOUT_S) as client:
        with pytest.raises(InvalidInputError, match=r"cannot explain.*not differentiable"):
            client.infer("lookup", OBS, explain=True)
        assert client.infer("lookup", OBS)["action"].shape == (3,)
    status, reply = post_json(
        port, "/v2/models/lookup/infer", infer_body(OBS, parameters={"explain": True})
    )
    assert status == 400
    assert "not differentiable" in reply["error"]
    status, reply = post_json(
        port, "/v2/models/ppo/infer", infer_body(OBS, parameters={"explain": "yes"})
    )
    assert status == 400
    assert "explain" in reply["error"]
    assert post_json(port, "/v2/models/ppo/infer", infer_body(OBS))[0] == 200


def test_fleetmind_call_explain_prints_attributions(
    server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"127.0.0.1:{server.port}"
    obs = json.dumps(OBS[0].tolist())
    assert main(["call", target, "--model", "ppo", "--obs", obs, "--explain"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    attributions = json.loads(lines[1])["attributions"]
    np.testing.assert_allclose(attributions, _expected()[0], rtol=1e-5, atol=1e-6)
