"""The HTTP/REST flavour (KServe V2 JSON, Triton's binary tensors) of a real server."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fleetmind.serve.config import ServeConfig
from fleetmind.serve.testing import ServerThread, toy_agent, write_toy_checkpoint

from .http_calls import call, infer_body, post_json

OBS = np.random.default_rng(5).normal(size=(3, 4)).astype(np.float32)
INFER = "/v2/models/pole/infer"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    run_dir = tmp_path_factory.mktemp("pole")
    write_toy_checkpoint(run_dir, seed=11, version=2)
    config = ServeConfig(
        host="127.0.0.1", port=0, http_port=0, model_name="pole", reload_interval_s=None
    )
    with ServerThread(run_dir, config) as running:
        yield running


def _port(server: ServerThread) -> int:
    port = server.server.http_port
    assert port is not None
    return port


def test_health_and_metadata(server: ServerThread) -> None:
    port = _port(server)
    for path, expected in [
        ("/v2/health/live", {"live": True}),
        ("/v2/health/ready", {"ready": True}),
        ("/v2/models/pole/ready", {"name": "pole", "version": "2", "ready": True}),
        ("/v2/models/pole/versions/2/ready", {"name": "pole", "version": "2", "ready": True}),
    ]:
        status, _, body = call(port, "GET", path)
        assert (status, json.loads(body)) == (200, expected), path
    status, _, body = call(port, "GET", "/v2")
    assert status == 200
    assert json.loads(body)["name"] == "fleetmind"
    for path in ("/v2/models/pole", "/v2/models/pole/versions/2"):
        status, _, body = call(port, "GET", path)
        meta = json.loads(body)
        assert status == 200
        assert meta["versions"] == ["2"]
        assert meta["inputs"] == [{"name": "observation", "datatype": "FP32", "shape": [-1, 4]}]
        assert [o["name"] for o in meta["outputs"]] == ["action", "action_probs", "value"]


def test_json_infer_flat_and_nested_matches_the_agent(server: ServerThread) -> None:
    expected = toy_agent(seed=11).decide_batch(OBS)
    nested = infer_body(OBS, id="call-7")
    flat = json.loads(nested)
    flat["inputs"][0]["data"] = OBS.ravel().tolist()
    for body in (nested, json.dumps(flat).encode()):
        status, reply = post_json(_port(server), INFER, body)
        assert status == 200, reply
        assert reply["model_name"] == "pole"
        assert reply["model_version"] == "2"
        assert reply["id"] == "call-7"
        assert set(reply["parameters"]) == {"queue_time_us", "compute_time_us"}
        assert all(isinstance(v, int) and v >= 0 for v in reply["parameters"].values())
        outputs = {o["name"]: o for o in reply["outputs"]}
        assert outputs["action"]["datatype"] == "INT64"
        assert outputs["action"]["shape"] == [3]
        assert outputs["action"]["data"] == expected.actions.tolist()
        assert outputs["action_probs"]["shape"] == [3, 2]
        np.testing.assert_allclose(outputs["value"]["data"], expected.outputs["value"], rtol=1e-5)


def test_requested_outputs_and_binary_tensors(server: ServerThread) -> None:
    expected = toy_agent(seed=11).decide_batch(OBS)
    header = {
        "inputs": [
            {
                "name": "observation",
                "shape": [3, 4],
                "datatype": "FP32",
                "parameters": {"binary_data_size": OBS.nbytes},
            }
        ],
        "outputs": [{"name": "value", "parameters": {"binary_data": True}}, {"name": "action"}],
    }
    head = json.dumps(header).encode()
    status, headers, body = call(
        _port(server),
        "POST",
        "/v2/models/pole/versions/2/infer",
        head + OBS.tobytes(),
        {"Inference-Header-Content-Length": str(len(head))},
    )
    assert status == 200, body
    length = int(headers["Inference-Header-Content-Length"])
    reply = json.loads(body[:length])
    assert [o["name"] for o in reply["outputs"]] == ["value", "action"]
    assert reply["outputs"][0]["parameters"] == {"binary_data_size": 12}
    value = np.frombuffer(body[length:], np.float32)
    np.testing.assert_allclose(value, expected.outputs["value"], rtol=1e-5)
    assert reply["outputs"][1]["data"] == expected.actions.tolist()


def _bad_bodies() -> list[tuple[str, bytes, dict[str, str], int, str]]:
    good = json.loads(infer_body(OBS))
    short = json.loads(infer_body(OBS))
    short["inputs"][0]["data"] = OBS.ravel().tolist()[:-1]
    shape = json.loads(infer_body(OBS))
    shape["inputs"][0]["shape"] = "3x4"
    foo = json.loads(infer_body(OBS))
    foo["inputs"][0]["datatype"] = "FOO"
    fp64 = json.loads(infer_body(OBS))
    fp64["inputs"][0]["datatype"] = "FP64"
    text = json.loads(infer_body(OBS))
    text["inputs"][0]["data"] = [["a", "b", "c", "d"]] * 3
    ragged = json.loads(infer_body(OBS))
    ragged["inputs"][0]["data"] = [[1, 2, 3, 4], [1, 2]]
    dumps = json.dumps
    head = dumps(good).encode()
    return [
        ("not json", b"{inputs: nope", {}, 400, "not JSON"),
        ("a json list", b"[1, 2]", {}, 400, "send an object"),
        ("no inputs", b"{}", {}, 400, "'inputs' is missing"),
        ("inputs not a list", dumps({"inputs": {"a": 1}}).encode(), {}, 400, "inputs"),
        ("shape not a list", dumps(shape).encode(), {}, 400, "shape"),
        ("data too short", dumps(short).encode(), {}, 400, "holds 11 values"),
        ("unknown datatype", dumps(foo).encode(), {}, 400, "'FOO' is not supported"),
        ("datatype not served", dumps(fp64).encode(), {}, 400, "expected FP32"),
        ("strings as data", dumps(text).encode(), {}, 400, "takes numbers"),
        ("ragged data", dumps(ragged).encode(), {}, 400, "rectangular"),
        (
            "binary header past the body",
            head,
            {"Inference-Header-Content-Length": str(len(head) + 100)},
            400,
            "Inference-Header-Content-Length",
        ),
        (
            "binary size past the body",
            _binary_claiming(10_000),
            {"Inference-Header-Content-Length": str(len(_binary_head(10_000)))},
            400,
            "binary_data_size",
        ),
    ]


def _binary_head(size: int) -> bytes:
    tensor = {
        "name": "observation",
        "shape": [3, 4],
        "datatype": "FP32",
        "parameters": {"binary_data_size": size},
    }
    return json.dumps({"inputs": [tensor]}).encode()


def _binary_claiming(size: int) -> bytes:
    return _binary_head(size) + OBS.tobytes()


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in _bad_bodies()],
)
def test_bad_bodies_are_400_and_the_server_stays_up(
    server: ServerThread, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    got, reply = post_json(_port(server), INFER, body, headers)
    assert got == status
    assert message in reply["error"]
    assert call(_port(server), "GET", "/v2/health/ready")[0] == 200


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/v2/models/nope", "'nope' is not served"),
        ("GET", "/v2/models/pole/versions/9", "version"),
        ("GET", "/v2/models/nope/ready", "'nope' is not served"),
        ("POST", "/v2/models/nope/infer", "'nope' is not served"),
        ("POST", "/v2/models/pole/versions/9/infer", "version"),
        ("GET", "/v3/whatever", "Not Found"),
    ],
)
def test_unknown_models_versions_and_paths_are_404(
    server: ServerThread, method: str, path: str, message: str
) -> None:
    body = infer_body(OBS) if method == "POST" else None
    status, headers, reply = call(_port(server), method, path, body)
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert message in json.loads(reply)["error"]


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A server with tokens, a 1 MiB body limit and a short body timeout."""
    run_dir = tmp_path_factory.mktemp("strict")
    write_toy_checkpoint(run_dir, seed=3, version=1)
    tokens = run_dir / "tokens"
    tokens.write_text("right-token\n")
    config = ServeConfig(
        host="127.0.0.1",
        port=0,
        http_port=0,
        model_name="m",
        reload_interval_s=None,
        token_file=tokens,
        max_message_mib=1,
        http_body_timeout_s=0.5,
        metrics_port=0,
    )
    with ServerThread(run_dir, config) as running:
        yield running


AUTH = {"Authorization": "Bearer right-token"}


def test_tokens_guard_everything_but_health(strict: ServerThread) -> None:
    port = _port(strict)
    assert call(port, "GET", "/v2/health/ready")[0] == 200
    assert call(port, "GET", "/v2/health/live")[0] == 200
    for headers, message in [
        ({}, "missing credentials"),
        ({"Authorization": "Bearer wrong"}, "invalid bearer token"),
        ({"Authorization": "right-token"}, "invalid bearer token"),
    ]:
        status, reply_headers, body = call(port, "GET", "/v2/models/m", headers=headers)
        assert status == 401
        assert reply_headers["WWW-Authenticate"] == "Bearer"
        assert message in json.loads(body)["error"]
        status, reply = post_json(port, "/v2/models/m/infer", infer_body(OBS), headers)
        assert (status, message in reply["error"]) == (401, True)
    assert call(port, "GET", "/v2/models/m", headers=AUTH)[0] == 200
    status, reply = post_json(port, "/v2/models/m/infer", infer_body(OBS), AUTH)
    assert status == 200, reply


def test_a_body_over_the_limit_is_413(strict: ServerThread) -> None:
    port = _port(strict)
    rows = np.zeros((70_000, 4), np.float32)  # 1.1 MiB of raw bytes
    head = _binary_head(rows.nbytes).replace(b"[3, 4]", b"[70000, 4]")
    headers = {"Inference-Header-Content-Length": str(len(head)), **AUTH}
    status, _, body = call(port, "POST", "/v2/models/m/infer", head + rows.tobytes(), headers)
    assert status == 413
    assert "1048576-byte limit" in json.loads(body)["error"]
    assert call(port, "GET", "/v2/health/ready")[0] == 200


def test_a_body_that_never_finishes_times_out_and_closes(strict: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", _port(strict)), timeout=10) as sock:
        sock.sendall(
            b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer right-token"
            b'\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"inputs": ['
        )
        start = time.monotonic()
        received = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            received += chunk
        waited = time.monotonic() - start
    assert received.startswith(b"HTTP/1.1 408")
    assert b"did not arrive within 0.5 s" in received
    assert 0.4 < waited < 5
    assert call(_port(strict), "GET", "/v2/health/ready")[0] == 200


def test_both_flavours_count_in_one_set_of_metrics(strict: ServerThread) -> None:
    from fleetmind.serve import Client

    port = _port(strict)
    before = _metric(strict, 'fleetmind_inference_requests_total{model="m",status="OK"}')
    with Client(f"127.0.0.1:{strict.port}", token="right-token") as client:
        client.infer("m", OBS)
    post_json(port, "/v2/models/m/infer", infer_body(OBS), AUTH)
    after = _metric(strict, 'fleetmind_inference_requests_total{model="m",status="OK"}')
    assert after - before == 2
    post_json(port, "/v2/models/m/infer", b"nope", AUTH)
    assert _metric(strict, 'status="INVALID_ARGUMENT"') >= 1


def _metric(server: ServerThread, name: str) -> float:
    status, _, body = call(server.server.metrics_port or 0, "GET", "/metrics")
    assert status == 200
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.decode().splitlines()
        if not line.startswith("#") and name in line
    )


def test_one_batch_mixes_grpc_and_http_calls(tmp_path: Path) -> None:
    import threading

    from fleetmind.serve import Client

    write_toy_checkpoint(tmp_path / "run", seed=2, delay_s=0.3)
    config = ServeConfig(
        host="127.0.0.1",
        port=0,
        http_port=0,
        model_name="m",
        reload_interval_s=None,
        metrics_port=0,
    )
    with ServerThread(tmp_path / "run", config) as server:
        port = _port(server)
        results: list[int] = []

        def rest() -> None:
            results.append(post_json(port, "/v2/models/m/infer", infer_body(OBS[:1]))[0])

        def grpc() -> None:
            with Client(f"127.0.0.1:{server.port}", timeout_s=10) as client:
                client.infer("m", OBS[:2])
                results.append(200)

        first = threading.Thread(target=rest)
        first.start()
        time.sleep(0.1)  # the first forward pass (0.3 s) is computing
        joined = [threading.Thread(target=rest), threading.Thread(target=grpc)]
        for thread in joined:
            thread.start()
        for thread in [first, *joined]:
            thread.join(timeout=20)
        assert results == [200, 200, 200]
        # two forward passes for three calls: the second held one HTTP and one gRPC call
        assert _metric(server, 'fleetmind_inference_batch_rows_count{model="m"}') == 2
        assert _metric(server, 'fleetmind_inference_batch_rows_sum{model="m"}') == 4


def test_stop_drains_http_calls_in_flight(tmp_path: Path) -> None:
    import threading

    write_toy_checkpoint(tmp_path / "run", seed=2, delay_s=0.5)
    config = ServeConfig(
        host="127.0.0.1", port=0, http_port=0, model_name="m", reload_interval_s=None
    )
    server = ServerThread(tmp_path / "run", config).start()
    port = _port(server)
    results: list[int] = []
    caller = threading.Thread(
        target=lambda: results.append(post_json(port, "/v2/models/m/infer", infer_body(OBS))[0])
    )
    caller.start()
    time.sleep(0.2)
    server.stop(grace=5)
    caller.join(timeout=10)
    assert results == [200]
    with pytest.raises(ConnectionRefusedError):
        call(port, "GET", "/v2/health/live", timeout=2)


def test_binary_data_output_sends_every_output_as_raw_bytes(server: ServerThread) -> None:
    body = infer_body(OBS, parameters={"binary_data_output": True})
    status, headers, reply = call(_port(server), "POST", INFER, body)
    assert status == 200
    length = int(headers["Inference-Header-Content-Length"])
    sizes = [o["parameters"]["binary_data_size"] for o in json.loads(reply[:length])["outputs"]]
    assert sizes == [3 * 8, 3 * 2 * 4, 3 * 4]
    assert len(reply) == length + sum(sizes)
    actions = np.frombuffer(reply[length : length + 24], "<i8")
    assert actions.tolist() == toy_agent(seed=11).decide_batch(OBS).actions.tolist()


def test_http_uses_the_grpc_tls_and_client_certificates(tmp_path: Path) -> None:
    import ssl

    from .pki import make_test_pki

    pki = make_test_pki(tmp_path)
    write_toy_checkpoint(tmp_path / "run", seed=1)
    config = ServeConfig(
        host="127.0.0.1",
        port=0,
        http_port=0,
        model_name="m",
        reload_interval_s=None,
        tls_cert=pki / "server.pem",
        tls_key=pki / "server.key",
        tls_client_ca=pki / "ca.pem",
    )
    with ServerThread(tmp_path / "run", config) as server:
        port = _port(server)
        trusting = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionResetError)):  # no client certificate
            call(port, "GET", "/v2/health/ready", host="localhost", tls=trusting)
        with pytest.raises(ConnectionResetError):  # plain HTTP to a TLS port
            call(port, "GET", "/v2/health/ready", timeout=5)
        trusting.load_cert_chain(pki / "client.pem", pki / "client.key")
        status, reply = post_json(
            port, "/v2/models/m/infer", infer_body(OBS), host="localhost", tls=trusting
        )
        assert status == 200, reply


def test_an_http_port_in_use_is_one_clear_error_and_nothing_listens(tmp_path: Path) -> None:
    from fleetmind.core.errors import UnavailableError
    from fleetmind.serve.server import InferenceServer
    from fleetmind.serve.testing import toy_loader

    write_toy_checkpoint(tmp_path / "run", seed=1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = ServeConfig(
            host="127.0.0.1",
            port=0,
            http_port=taken.getsockname()[1],
            model_name="m",
            reload_interval_s=None,
        )
        server = InferenceServer(tmp_path / "run", config, toy_loader)

        async def start() -> None:
            with pytest.raises(UnavailableError, match=r"cannot serve HTTP on 127\.0\.0\.1"):
                await server.start()
            assert server.port is not None
            with pytest.raises(ConnectionRefusedError):  # the gRPC port was released too
                await asyncio.open_connection("127.0.0.1", server.port)

        asyncio.run(start())
