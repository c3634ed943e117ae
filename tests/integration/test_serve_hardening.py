"""The inference server against hostile or careless input: folder names, echoed input,
malformed bytes to health and reflection, oversized requests, overload."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from fleetmind.core.agent import Decision
from fleetmind.core.errors import InvalidInputError
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.rpc.generated import grpc_predict_v2_pb2_grpc as pb_grpc
from fleetmind.serve import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.model import LoadedModel
from fleetmind.serve.testing import ServerThread, toy_loader, write_toy_checkpoint

OBS = np.zeros((2, 4), dtype=np.float32)


def _config(**overrides: object) -> ServeConfig:
    base = {"host": "127.0.0.1", "port": 0, "reload_interval_s": None}
    return ServeConfig(**(base | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize("folder", ["\u00b2", "\u0661", "\uff11"])  # ², Arabic-Indic 1, fullwidth 1
def test_version_folder_with_non_ascii_digits_is_skipped(
    tmp_path: Path, folder: str, caplog: pytest.LogCaptureFixture
) -> None:
    write_toy_checkpoint(tmp_path / "pole" / "1", seed=1, version=1)
    write_toy_checkpoint(tmp_path / "pole" / folder, seed=2, version=2)
    with (
        caplog.at_level(logging.WARNING, "fleetmind.serve.repository"),
        ServerThread(tmp_path, _config()) as server,
        Client(f"127.0.0.1:{server.port}") as client,
    ):
        assert client.model_metadata("pole").versions == ("1",)
        write_toy_checkpoint(tmp_path / "pole" / f"{folder}{folder}", seed=3, version=3)
        server.call(server.server.repository.refresh())
        assert client.model_metadata("pole").versions == ("1",)
        assert client.infer("pole", OBS)["action"].shape == (2,)
    skips = [r for r in caplog.records if "skipping" in r.getMessage()]
    assert len(skips) == 2  # each folder once, not once per rescan


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    run_dir = tmp_path_factory.mktemp("run")
    write_toy_checkpoint(run_dir, seed=4)
    with ServerThread(run_dir, _config(model_name="m", max_message_mib=1)) as running:
        yield running


@pytest.fixture(scope="module")
def stub(server: ServerThread) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def _infer_request(model: str = "m", rows: int = 2, **tensor: object) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model)
    spec = {"name": "observation", "datatype": "FP32", "shape": [rows, 4]} | tensor
    request.inputs.add(**spec)
    request.raw_input_contents.append(np.zeros((rows, 4), "<f4").tobytes())
    return request


def _failure(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


LONG = "x" * 100_000


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: _infer_request(model=LONG), grpc.StatusCode.NOT_FOUND),
        (lambda: _infer_request(name=LONG), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: _infer_request(datatype=LONG), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: _infer_request(shape=[2, *range(1, 40_000)]), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: _infer_request(shape=[2, 5] * 4), grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=["model", "input-name", "datatype", "rank", "shape"],
)
def test_errors_quote_long_input_only_in_part(
    stub: pb_grpc.GRPCInferenceServiceStub,
    make: Callable[[], pb.ModelInferRequest],
    code: grpc.StatusCode,
) -> None:
    error = _failure(lambda: stub.ModelInfer(make(), timeout=10))
    assert error.code() == code  # type: ignore[attr-defined]
    assert len(error.details()) < 400  # type: ignore[attr-defined]


def test_metadata_of_a_long_model_name_is_not_found(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    for version in ("", "1" * 100_000):
        request = pb.ModelMetadataRequest(name="m" if version else LONG, version=version)
        error = _failure(lambda r=request: stub.ModelMetadata(r, timeout=10))  # type: ignore[misc]
        assert error.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
        assert "characters)" in error.details()  # type: ignore[attr-defined]


GARBAGE = b"\xff\xff\xff not a message"


def _calls(channel: grpc.Channel) -> dict[str, Callable[[], object]]:
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    watch = channel.unary_stream("/grpc.health.v1.Health/Watch")
    reflect = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    )
    return {
        "health-check": lambda: check(GARBAGE, timeout=5),
        "health-watch": lambda: list(watch(GARBAGE, timeout=5)),
        "reflection": lambda: list(reflect(iter([GARBAGE]), timeout=5)),
    }


def test_malformed_health_and_reflection_calls_are_invalid_argument(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO),
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        for name, call in _calls(channel).items():
            for _ in range(20):
                error = _failure(call)
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, name  # type: ignore[attr-defined]
                assert "is not a valid grpc." in error.details()  # type: ignore[attr-defined]
        assert client_ready(server)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert len([r for r in caplog.records if "refused a request" in r.getMessage()]) <= 1


def client_ready(server: ServerThread) -> bool:
    with Client(f"127.0.0.1:{server.port}") as client:
        return client.server_ready()


def test_default_row_cap_keeps_the_reply_within_the_message_limit(
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    # 60,000 rows fit a 1 MiB request (16 bytes a row) but not its reply (20 bytes a row).
    error = _failure(lambda: stub.ModelInfer(_infer_request(rows=60_000), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "at most 49152 rows per request" in error.details()  # type: ignore[attr-defined]
    reply = stub.ModelInfer(_infer_request(rows=49_152), timeout=10)
    assert list(reply.outputs[0].shape) == [49_152]


def test_a_long_request_id_cannot_push_the_reply_over_the_limit(
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    request = _infer_request(rows=40_000)
    request.id = "i" * 400_000
    error = _failure(lambda: stub.ModelInfer(request, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "message limit" in error.details()  # type: ignore[attr-defined]


def test_an_output_asked_for_twice_is_invalid(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    request = _infer_request()
    for _ in range(3):
        request.outputs.add(name="action")
    error = _failure(lambda: stub.ModelInfer(request, timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


def test_max_request_rows_flag_caps_rows(tmp_path: Path) -> None:
    write_toy_checkpoint(tmp_path, seed=1)
    config = _config(model_name="m", max_request_rows=100)
    with ServerThread(tmp_path, config) as server, Client(f"127.0.0.1:{server.port}") as client:
        assert client.infer("m", np.zeros((100, 4)))["action"].shape == (100,)
        with pytest.raises(InvalidInputError, match="at most 100 rows per request"):
            client.infer("m", np.zeros((101, 4)))


class _Gate:
    """Makes forward passes of more than 64 rows wait until :meth:`open`."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def loader(self, path: Path) -> LoadedModel:
        loaded = toy_loader(path)
        policy = loaded.agent.policy
        decide = policy.decide

        def gated(rows: np.ndarray, deterministic: bool = False) -> Decision:
            if len(rows) > 64:
                self.entered.set()
                self.opened.wait(30)
            return decide(rows, deterministic)

        policy.decide = gated  # type: ignore[method-assign]
        return loaded


def test_a_large_request_does_not_stall_the_event_loop(tmp_path: Path) -> None:
    write_toy_checkpoint(tmp_path, seed=1)
    gate = _Gate()
    config = _config(model_name="m", forward_in_thread=False)
    with (
        ServerThread(tmp_path, config, gate.loader) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        large = stub.ModelInfer.future(_infer_request(rows=5_000), timeout=60)
        try:
            assert gate.entered.wait(30)
            # Inline on the event loop, the large forward pass would hold this call.
            assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live
            assert stub.ModelMetadata(pb.ModelMetadataRequest(name="m"), timeout=10).name == "m"
        finally:
            gate.opened.set()
        assert list(large.result().outputs[0].shape) == [5_000]


def _connectivity(channel: grpc.Channel) -> list[grpc.ChannelConnectivity]:
    """Every connectivity state ``channel`` passes through from now on."""
    states: list[grpc.ChannelConnectivity] = []
    channel.subscribe(states.append, try_to_connect=False)
    return states


def test_connections_are_closed_at_their_maximum_age(tmp_path: Path) -> None:
    """Clients must resolve the service name again to find replicas that started later."""
    write_toy_checkpoint(tmp_path, seed=5)
    config = _config(model_name="m", max_connection_age_s=0.5, grace_s=0.2)
    with (
        ServerThread(tmp_path, config) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        stub.ModelInfer(_infer_request(), timeout=10)
        states = _connectivity(channel)
        deadline = 100
        while grpc.ChannelConnectivity.IDLE not in states and deadline:
            threading.Event().wait(0.05)  # GOAWAY: the channel goes idle, then reconnects
            deadline -= 1
        assert grpc.ChannelConnectivity.IDLE in states
        assert stub.ModelInfer(_infer_request(), timeout=10).outputs  # a new connection works


def test_connections_live_on_without_a_maximum_age(server: ServerThread) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        stub.ModelInfer(_infer_request(), timeout=10)
        states = _connectivity(channel)
        threading.Event().wait(1.5)
        assert grpc.ChannelConnectivity.IDLE not in states
