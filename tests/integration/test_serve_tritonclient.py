"""Unmodified tritonclient.grpc and tritonclient.http clients work against fleetmind serve."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.grpc as triton
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from fleetmind.serve.config import ServeConfig
from fleetmind.serve.testing import ServerThread, toy_agent, write_toy_checkpoint


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    run_dir = tmp_path_factory.mktemp("pole")
    write_toy_checkpoint(run_dir, seed=11, version=2)
    config = ServeConfig(
        host="127.0.0.1", port=0, http_port=0, model_name="pole", reload_interval_s=None
    )
    with ServerThread(run_dir, config) as running:
        yield running


def test_tritonclient_health_metadata_and_batched_infer(server: ServerThread) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("pole")
        assert client.get_server_metadata().name == "fleetmind"
        meta = client.get_model_metadata("pole", as_json=True)
        assert meta["inputs"] == [{"name": "observation", "datatype": "FP32", "shape": ["-1", "4"]}]
        assert [o["name"] for o in meta["outputs"]] == ["action", "action_probs", "value"]

        obs = np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32)
        tensor = triton.InferInput("observation", list(obs.shape), "FP32")
        tensor.set_data_from_numpy(obs)
        wanted = [triton.InferRequestedOutput("action"), triton.InferRequestedOutput("value")]
        result = client.infer("pole", [tensor], outputs=wanted, client_timeout=10)
        expected = toy_agent(seed=11).decide_batch(obs)
        np.testing.assert_array_equal(result.as_numpy("action"), expected.actions)
        np.testing.assert_allclose(result.as_numpy("value"), expected.outputs["value"], rtol=1e-5)
        assert result.as_numpy("action_probs") is None

        bad = triton.InferInput("observation", [1, 4], "FP64")
        bad.set_data_from_numpy(np.zeros((1, 4), np.float64))
        with pytest.raises(triton.InferenceServerException, match="FP64"):
            client.infer("pole", [bad], client_timeout=10)
    finally:
        client.close()


def test_tritonclient_http_health_metadata_and_infer(server: ServerThread) -> None:
    client = triton_http.InferenceServerClient(f"127.0.0.1:{server.server.http_port}")
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("pole")
        assert client.is_model_ready("pole", "2")
        assert not client.is_model_ready("nope")
        assert client.get_server_metadata()["name"] == "fleetmind"
        meta = client.get_model_metadata("pole")
        assert meta["inputs"] == [{"name": "observation", "datatype": "FP32", "shape": [-1, 4]}]

        obs = np.random.default_rng(2).normal(size=(8, 4)).astype(np.float32)
        expected = toy_agent(seed=11).decide_batch(obs)
        for binary in (True, False):  # Triton's binary tensors (its default), then JSON
            tensor = triton_http.InferInput("observation", list(obs.shape), "FP32")
            tensor.set_data_from_numpy(obs, binary_data=binary)
            result = client.infer("pole", [tensor])  # every output, as raw bytes
            np.testing.assert_array_equal(result.as_numpy("action"), expected.actions)
            wanted = [triton_http.InferRequestedOutput("value", binary_data=binary)]
            result = client.infer("pole", [tensor], model_version="2", outputs=wanted)
            np.testing.assert_allclose(
                result.as_numpy("value"), expected.outputs["value"], rtol=1e-5
            )
            assert result.as_numpy("action") is None

        bad = triton_http.InferInput("observation", [1, 4], "FP64")
        bad.set_data_from_numpy(np.zeros((1, 4), np.float64))
        with pytest.raises(InferenceServerException, match="FP64"):
            client.infer("pole", [bad])
        with pytest.raises(InferenceServerException, match="not served"):
            client.infer("nope", [tensor])
    finally:
        client.close()
