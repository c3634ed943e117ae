"""Overload is refused, not queued: while new calls wait longer than ``--max-wait-ms``
the server refuses a share of them RESOURCE_EXHAUSTED with a pushback (HTTP: 429 and
Retry-After), its transport sheds calls beyond ``--max-pending-calls``, and the client
SDK backs off on refusals within a budget."""

from __future__ import annotations

import threading
import time
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
from fleetmind.serve.shedding import PUSHBACK_KEY, LoadShedder, ShedPolicy
from fleetmind.serve.testing import ServerThread, write_toy_checkpoint

from .http_calls import call, infer_body

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
        max_wait_ms=0,  # the transport's limit alone
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


def _slow_server_config(**overrides: Any) -> ServeConfig:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "model_name": "m",
        "reload_interval_s": None,
        "max_batch_size": 1,
        "forward_in_thread": False,
        **overrides,
    }
    return ServeConfig(**settings)


def _closed_loop(port: int, callers: int, seconds: float) -> list[tuple[grpc.StatusCode, Any]]:
    """``callers`` threads that call again as soon as answered (no retries, no pause)."""
    outcomes: list[tuple[grpc.StatusCode, Any]] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds
    options = [("grpc.enable_retries", 0)]
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        infer = channel.unary_unary(METHOD)

        def caller() -> None:
            while time.monotonic() < end:
                try:
                    infer(_request(), timeout=30)
                    outcome: tuple[grpc.StatusCode, Any] = (grpc.StatusCode.OK, None)
                except grpc.RpcError as exc:
                    outcome = (exc.code(), exc)
                with lock:
                    outcomes.append(outcome)

        threads = [threading.Thread(target=caller) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return outcomes


def test_calls_that_wait_too_long_are_refused_with_a_pushback(tmp_path: Path) -> None:
    # 16 callers of a model whose forward pass blocks the event loop for 20 ms: a new
    # call waits about 16 x 20 ms, far beyond the 40 ms allowed.
    write_toy_checkpoint(tmp_path, seed=1, delay_s=0.02)
    with ServerThread(tmp_path, _slow_server_config(max_wait_ms=40)) as server:
        outcomes = _closed_loop(server.port, callers=16, seconds=3.0)
        handled = dict(server.server.metrics._requests)
        measured_wait = server.server.metrics._wait_s
        # once the load is gone the share refused decays and calls are answered again
        assert _answered_within(server.port, seconds=10.0)
    codes = Counter(code for code, _ in outcomes)
    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    for code, exc in outcomes:
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            assert "server overloaded" in exc.details()
            pushback = dict(exc.trailing_metadata())[PUSHBACK_KEY]
            assert int(pushback) >= 1
            assert f"retry in {pushback} ms" in exc.details()
    assert handled[("m", "RESOURCE_EXHAUSTED")] == codes[grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert handled[("m", "OK")] >= codes[grpc.StatusCode.OK]
    assert measured_wait > 0.0


def _answered_within(port: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        infer = channel.unary_unary(METHOD)
        while time.monotonic() < end:
            try:
                infer(_request(), timeout=10)
                return True
            except grpc.RpcError:
                time.sleep(0.1)
    return False


def test_without_a_wait_limit_the_same_load_is_queued(tmp_path: Path) -> None:
    write_toy_checkpoint(tmp_path, seed=1, delay_s=0.02)
    with ServerThread(tmp_path, _slow_server_config(max_wait_ms=0)) as server:
        outcomes = _closed_loop(server.port, callers=16, seconds=1.5)
    assert {code for code, _ in outcomes} == {grpc.StatusCode.OK}


def test_an_overloaded_http_call_gets_429_and_retry_after(tmp_path: Path) -> None:
    write_toy_checkpoint(tmp_path, seed=1)
    config = _slow_server_config(http_port=0)
    with ServerThread(tmp_path, config) as server:
        # a shedder that refuses every call (the probe feeds the server's own one)
        refusing = LoadShedder(ShedPolicy(), rng=lambda: 0.0)
        refusing.share, refusing.pushback_s = 1.0, 2.4
        server.server.servicer.shedder = refusing
        assert server.server.http_port is not None
        status, headers, body = call(
            server.server.http_port,
            "POST",
            "/v2/models/m/infer",
            infer_body(OBS),
            {"Content-Type": "application/json"},
        )
        handled = dict(server.server.metrics._requests)
    assert status == 429
    assert headers["Retry-After"] == "2"  # 1.2 s, rounded up to whole seconds
    assert "server overloaded" in body.decode()
    assert handled == {("m", "RESOURCE_EXHAUSTED"): 1}


class RefuseFirst(LoadShedder):
    """Refuses the first ``count`` calls with a pushback of ``pushback_ms``."""

    def __init__(self, count: int, pushback_ms: int) -> None:
        super().__init__(ShedPolicy())
        self.count, self.pushback_ms = count, pushback_ms

    def refuse(self) -> int:
        if self.count:
            self.count -= 1
            return self.pushback_ms
        return 0


def test_the_sdk_waits_out_the_servers_pushback_and_retries(tmp_path: Path) -> None:
    write_toy_checkpoint(tmp_path, seed=1)
    with ServerThread(tmp_path, _slow_server_config()) as server:
        server.server.servicer.shedder = RefuseFirst(count=1, pushback_ms=400)
        with Client(f"127.0.0.1:{server.port}") as client:
            began = time.monotonic()
            actions = client.infer("m", OBS)["action"]
            waited = time.monotonic() - began
        handled = dict(server.server.metrics._requests)
    assert actions.shape == (1,)
    # the SDK's own first backoff is at most 50 ms: the pushback decided the wait
    assert waited >= 0.4
    assert handled == {("m", "RESOURCE_EXHAUSTED"): 1, ("m", "OK"): 1}


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
