"""Overload is refused, not queued: the server's transport sheds calls beyond
``--max-pending-calls``, and the client SDK backs off on refusals within a budget."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

import fleetmind.serve.client as client_module
from fleetmind.core.errors import OverloadedError
from fleetmind.rpc.codec import encode_tensor
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.serve import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.testing import ServerThread, write_toy_checkpoint

METHOD = "/inference.GRPCInferenceService/ModelInfer"
OBS = np.zeros((1, 4), dtype=np.float32)


def _request() -> bytes:
    request = pb.ModelInferRequest(model_name="m")
    datatype, shape, raw = encode_tensor(OBS, "observation")
    request.inputs.add(name="observation", datatype=datatype, shape=shape)
    request.raw_input_contents.append(raw)
    return request.SerializeToString()


def test_calls_beyond_the_pending_limit_are_refused_not_queued(tmp_path: Path) -> None:
    # Each forward pass blocks the event loop for 50 ms, so calls pile up in gRPC's
    # core meanwhile: beyond 4 waiting, core refuses them at once.
    write_toy_checkpoint(tmp_path, seed=1, delay_s=0.05)
    config = ServeConfig(
        host="127.0.0.1",
        port=0,
        model_name="m",
        reload_interval_s=None,
        max_batch_size=1,
        forward_in_thread=False,
        max_pending_calls=4,
    )
    with (
        ServerThread(tmp_path, config) as server,
        grpc.insecure_channel(
            f"127.0.0.1:{server.port}", options=[("grpc.enable_retries", 0)]
        ) as channel,
    ):
        call = channel.unary_unary(METHOD)
        pending = [call.future(_request(), timeout=60) for _ in range(64)]
        codes = Counter(_code(f) for f in pending)
        handled = dict(server.server.metrics._requests)
    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.CANCELLED}
    assert codes[grpc.StatusCode.CANCELLED] >= 32
    assert handled == {("m", "OK"): codes[grpc.StatusCode.OK]}  # refused before any Python


def _code(future: Any) -> grpc.StatusCode:
    try:
        future.result()
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


class RefusingServicer:
    """Answers RESOURCE_EXHAUSTED to the first ``refusals`` calls, then real outputs."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.calls = 0
        self._lock = threading.Lock()

    def infer(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._lock:
            self.calls += 1
            refuse = self.calls <= self.refusals
        if refuse:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full; retry later")
        reply = pb.ModelInferResponse(model_name="m")
        datatype, shape, raw = encode_tensor(np.array([1], dtype=np.int64), "action")
        reply.outputs.add(name="action", datatype=datatype, shape=shape)
        reply.raw_output_contents.append(raw)
        return reply.SerializeToString()


@pytest.fixture
def refusing() -> Iterator[tuple[RefusingServicer, int]]:
    servicer = RefusingServicer(refusals=2)
    server = grpc.server(futures.ThreadPoolExecutor(2))
    handler = grpc.unary_unary_rpc_method_handler(servicer.infer)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(METHOD.split("/")[1], {"ModelInfer": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(None)


def test_client_backs_off_and_retries_a_full_queue(
    refusing: tuple[RefusingServicer, int],
) -> None:
    servicer, port = refusing
    with Client(f"127.0.0.1:{port}") as client:
        assert client.infer("m", OBS)["action"].tolist() == [1]
    assert servicer.calls == 3


def test_client_stops_retrying_a_server_that_keeps_refusing(
    refusing: tuple[RefusingServicer, int],
) -> None:
    servicer, port = refusing
    servicer.refusals = 1_000_000
    budget = client_module.RETRY_BUDGET_TOKENS
    with Client(f"127.0.0.1:{port}") as client:
        # retries stop once half of the budget is spent: about budget / 2 retries in all
        for _ in range(budget // 2):
            with pytest.raises(OverloadedError, match="queue full"):
                client.infer("m", OBS)
        spent = servicer.calls
        assert spent <= budget // 2 + budget // 2 + 5
        for _ in range(10):
            with pytest.raises(OverloadedError, match="queue full"):
                client.infer("m", OBS)
    assert servicer.calls - spent == 10  # one attempt each: no retries left
