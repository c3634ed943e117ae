"""The inference server over real gRPC: protocol calls, bad input, limits, health."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fleetmind.core.errors import InvalidInputError, NotFoundError, OverloadedError
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.rpc.generated import grpc_predict_v2_pb2_grpc as pb_grpc
from fleetmind.serve import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.testing import ServerThread, toy_agent, write_toy_checkpoint


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    run_dir = tmp_path_factory.mktemp("cartpole")
    write_toy_checkpoint(run_dir, seed=7, version=3)
    config = ServeConfig(host="127.0.0.1", port=0, max_message_mib=1, reload_interval_s=None)
    with ServerThread(run_dir, config) as running:
        yield running


@pytest.fixture(scope="module")
def stub(server: ServerThread) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def _name(server: ServerThread) -> str:
    return server.server.repository.names()[0]


def _request(server: ServerThread, rows: np.ndarray, **tensor: object) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=_name(server), id="r1")
    spec = {"name": "observation", "datatype": "FP32", "shape": list(rows.shape)} | tensor
    request.inputs.add(**spec)
    request.raw_input_contents.append(rows.astype("<f4").tobytes())
    return request


def test_metadata_describes_observation_and_outputs(server: ServerThread) -> None:
    with Client(f"127.0.0.1:{server.port}") as client:
        assert client.server_live()
        assert client.server_ready()
        assert client.model_ready(_name(server))
        assert not client.model_ready("nope")
        info = client.model_metadata(_name(server))
    assert info.versions == ("3",)
    assert [(t.name, t.datatype, t.shape) for t in info.inputs] == [
        ("observation", "FP32", (-1, 4))
    ]
    assert [(t.name, t.datatype, t.shape) for t in info.outputs] == [
        ("action", "INT64", (-1,)),
        ("action_probs", "FP32", (-1, 2)),
        ("value", "FP32", (-1,)),
    ]


def test_batch_inference_matches_the_agent(server: ServerThread) -> None:
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    with Client(f"127.0.0.1:{server.port}") as client:
        outputs = client.infer(_name(server), obs)
        action = client.act(_name(server), obs[0])
    expected = toy_agent(seed=7).decide_batch(obs)
    np.testing.assert_array_equal(outputs["action"], expected.actions)
    np.testing.assert_allclose(outputs["action_probs"], expected.outputs["action_probs"], rtol=1e-5)
    np.testing.assert_allclose(outputs["value"], expected.outputs["value"], rtol=1e-5)
    assert action == expected.actions[0]


def test_each_answer_reports_its_queue_and_compute_time(server: ServerThread) -> None:
    obs = np.zeros((2, 4), dtype=np.float32)
    with Client(f"127.0.0.1:{server.port}") as client:
        reply = client.infer_reply(_name(server), obs, outputs=("action",))
    assert set(reply.outputs) == {"action"}
    assert set(reply.parameters) == {"queue_time_us", "compute_time_us"}
    assert all(isinstance(v, int) and 0 <= v < 5_000_000 for v in reply.parameters.values())


def test_typed_contents_and_output_selection(server: ServerThread, stub) -> None:  # type: ignore[no-untyped-def]
    request = pb.ModelInferRequest(model_name=_name(server), id="typed")
    request.inputs.add(name="observation", datatype="FP32", shape=[2, 4])
    request.inputs[0].contents.fp32_contents.extend([0.1] * 8)
    request.outputs.add(name="value")
    reply = stub.ModelInfer(request, timeout=5)
    assert reply.id == "typed"
    assert reply.model_version == "3"
    assert [o.name for o in reply.outputs] == ["value"]
    assert np.frombuffer(reply.raw_output_contents[0], "<f4").shape == (2,)


BAD_INPUTS = [
    ("wrong datatype", {"datatype": "FP64"}, "datatype 'FP64'; expected FP32"),
    ("wrong shape", {"shape": [2, 5]}, "shape [2, 5]; expected [B, 4]"),
    ("empty batch", {"shape": [0, 4]}, "empty batch"),
    ("wrong name", {"name": "obs"}, "unknown input 'obs'"),
]


@pytest.mark.parametrize(("label", "tensor", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_tensors_are_invalid_argument(
    server: ServerThread, stub, label, tensor, message
) -> None:  # type: ignore[no-untyped-def]
    rows = np.zeros((2, 4), np.float32)
    if tensor.get("shape") == [0, 4]:
        rows = np.zeros((0, 4), np.float32)
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(_request(server, rows, **tensor), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()


def test_more_bad_requests(server: ServerThread, stub) -> None:  # type: ignore[no-untyped-def]
    good = np.zeros((2, 4), np.float32)
    cases: list[tuple[pb.ModelInferRequest, grpc.StatusCode, str]] = []
    short = _request(server, good)
    short.raw_input_contents[0] = b"\0" * 12
    cases.append((short, grpc.StatusCode.INVALID_ARGUMENT, "hold 12 bytes"))
    nan = _request(server, np.array([[np.nan, 0, 0, 0]], np.float32))
    cases.append((nan, grpc.StatusCode.INVALID_ARGUMENT, "NaN or infinite"))
    inf = _request(server, np.array([[np.inf, 0, 0, 0]], np.float32))
    cases.append((inf, grpc.StatusCode.INVALID_ARGUMENT, "NaN or infinite"))
    two = _request(server, good)
    two.inputs.add(name="mask", datatype="FP32", shape=[2, 4])
    cases.append((two, grpc.StatusCode.INVALID_ARGUMENT, "exactly 1 input"))
    none = pb.ModelInferRequest(model_name=_name(server))
    cases.append((none, grpc.StatusCode.INVALID_ARGUMENT, "exactly 1 input"))
    unknown = _request(server, good)
    unknown.model_name = "nope"
    cases.append((unknown, grpc.StatusCode.NOT_FOUND, "model 'nope' is not served"))
    version = _request(server, good)
    version.model_version = "99"
    cases.append((version, grpc.StatusCode.NOT_FOUND, "no version '99'"))
    output = _request(server, good)
    output.outputs.add(name="logits")
    cases.append((output, grpc.StatusCode.INVALID_ARGUMENT, "unknown output 'logits'"))
    for request, code, message in cases:
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(request, timeout=5)
        assert (info.value.code(), message in info.value.details()) == (code, True), message
    assert stub.ModelInfer(_request(server, good), timeout=5).outputs


def test_garbage_bytes_and_oversized_messages(server: ServerThread) -> None:
    with grpc.insecure_channel(
        f"127.0.0.1:{server.port}", options=[("grpc.max_send_message_length", 8 * 2**20)]
    ) as channel:
        raw = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as info:
            raw(b"\xff\xff\xff\xff garbage", timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid inference.ModelInferRequest" in info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            raw(b"\0" * (2 * 2**20), timeout=5)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with Client(f"127.0.0.1:{server.port}") as client:
        assert client.server_ready()


def test_client_maps_statuses_to_errors(server: ServerThread) -> None:
    with Client(f"127.0.0.1:{server.port}") as client:
        with pytest.raises(NotFoundError, match="NOT_FOUND"):
            client.infer("nope", np.zeros((1, 4)))
        with pytest.raises(InvalidInputError, match="expected"):
            client.infer(_name(server), np.zeros((1, 3)))
        with pytest.raises(OverloadedError):
            client.infer(_name(server), np.zeros((70_000, 4)))


def test_health_and_reflection(server: ServerThread) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name for r in replies for s in r.list_services_response.service}
        symbol = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="inference.GRPCInferenceService"
        )
        files = list(reflect.ServerReflectionInfo(iter([symbol]), timeout=5))
    assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= names
    assert files[0].file_descriptor_response.file_descriptor_proto


def test_server_metadata(stub) -> None:  # type: ignore[no-untyped-def]
    reply = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=5)
    assert reply.name == "fleetmind"
