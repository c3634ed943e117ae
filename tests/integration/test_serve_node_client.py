"""A client in another language: Node.js calls ModelInfer (gRPC, from our .proto with
@grpc/grpc-js and @grpc/proto-loader) and infer over HTTP/REST (Node's own fetch).

Skipped when node is missing or scripts/node-client has not installed the client's
modules; nothing is downloaded here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fleetmind.serve.config import ServeConfig
from fleetmind.serve.testing import ServerThread, toy_agent, write_toy_checkpoint

CLIENT = Path(__file__).resolve().parents[1] / "clients" / "node"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (CLIENT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.skip("the Node.js client is not installed: run scripts/node-client")
    return node


def test_node_client_calls_both_flavours(tmp_path: Path) -> None:
    node = _node()
    write_toy_checkpoint(tmp_path / "run", seed=8)
    tokens = tmp_path / "tokens"
    tokens.write_text("node-token\n")
    config = ServeConfig(
        host="127.0.0.1",
        port=0,
        http_port=0,
        model_name="m",
        reload_interval_s=None,
        token_file=tokens,
    )
    obs = np.random.default_rng(4).normal(size=(3, 4)).astype(np.float32)
    with ServerThread(tmp_path / "run", config) as server:
        done = subprocess.run(
            [
                node,
                str(CLIENT / "client.js"),
                *("--grpc", f"127.0.0.1:{server.port}"),
                *("--http", f"127.0.0.1:{server.server.http_port}"),
                *("--model", "m", "--obs", json.dumps(obs.tolist()), "--token", "node-token"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected = toy_agent(seed=8).decide_batch(obs)
    for flavour in ("grpc", "http"):
        outputs = result[flavour]
        assert outputs["action"] == expected.actions.tolist(), flavour
        np.testing.assert_allclose(outputs["value"], expected.outputs["value"], rtol=1e-5)
        np.testing.assert_allclose(
            np.reshape(outputs["action_probs"], (3, 2)), expected.outputs["action_probs"], rtol=1e-5
        )


def test_node_client_without_a_token_is_refused(tmp_path: Path) -> None:
    node = _node()
    write_toy_checkpoint(tmp_path / "run", seed=8)
    tokens = tmp_path / "tokens"
    tokens.write_text("node-token\n")
    config = ServeConfig(
        host="127.0.0.1", port=0, model_name="m", reload_interval_s=None, token_file=tokens
    )
    with ServerThread(tmp_path / "run", config) as server:
        done = subprocess.run(
            [
                *(node, str(CLIENT / "client.js"), "--grpc", f"127.0.0.1:{server.port}"),
                *("--model", "m", "--obs", "[[0, 0, 0, 0]]"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert "UNAUTHENTICATED" in done.stderr
