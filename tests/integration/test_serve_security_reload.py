"""Tokens, TLS and mutual TLS, metrics, and hot reload of versions."""

from __future__ import annotations

import shutil
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tests.integration.pki import make_test_pki

from fleetmind.core.errors import AuthenticationError, UnavailableError
from fleetmind.serve import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.testing import ServerThread, toy_agent, write_toy_checkpoint

OBS = np.random.default_rng(3).normal(size=(4, 4)).astype(np.float32)


def _config(**overrides: object) -> ServeConfig:
    base = {"host": "127.0.0.1", "port": 0, "reload_interval_s": None, "model_name": "m"}
    return ServeConfig(**(base | overrides))  # type: ignore[arg-type]


def test_token_required_except_for_health(tmp_path: Path) -> None:
    write_toy_checkpoint(tmp_path / "run", seed=1)
    tokens = tmp_path / "tokens"
    tokens.write_text("# operators\nsecret-one\nsecret-two\n")
    with ServerThread(tmp_path / "run", _config(token_file=tokens)) as server:
        target = f"127.0.0.1:{server.port}"
        with Client(target, token="secret-two") as client:
            assert client.infer("m", OBS)["action"].shape == (4,)
        for token, message in [(None, "missing credentials"), ("wrong", "invalid bearer token")]:
            with (
                Client(target, token=token) as client,
                pytest.raises(AuthenticationError, match=message),
            ):
                client.server_ready()
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def test_tls_and_mutual_tls(tmp_path: Path, pki: Path) -> None:
    write_toy_checkpoint(tmp_path / "run", seed=1)
    tls = {"tls_cert": pki / "server.pem", "tls_key": pki / "server.key"}
    with ServerThread(tmp_path / "run", _config(**tls)) as server:
        with Client(f"localhost:{server.port}", tls_ca=pki / "ca.pem") as client:
            assert client.server_ready()
        plain = Client(f"localhost:{server.port}", timeout_s=2, max_attempts=1)
        with plain, pytest.raises(UnavailableError):
            plain.server_ready()
    mtls = tls | {"tls_client_ca": pki / "ca.pem"}
    with ServerThread(tmp_path / "run", _config(**mtls)) as server:
        target = f"localhost:{server.port}"
        with Client(
            target, tls_ca=pki / "ca.pem", tls_cert=pki / "client.pem", tls_key=pki / "client.key"
        ) as client:
            assert client.infer("m", OBS)["action"].shape == (4,)
        anonymous = Client(target, tls_ca=pki / "ca.pem", timeout_s=2, max_attempts=1)
        with anonymous, pytest.raises(UnavailableError):
            anonymous.server_ready()


def test_metrics_page_counts_requests_batches_and_failures(tmp_path: Path) -> None:
    write_toy_checkpoint(tmp_path / "run", seed=1)
    with ServerThread(tmp_path / "run", _config(metrics_port=0)) as server:
        with Client(f"127.0.0.1:{server.port}") as client:
            client.infer("m", OBS)
            with pytest.raises(Exception, match="expected"):
                client.infer("m", np.zeros((1, 3)))
        page = (
            urllib.request.urlopen(
                f"http://127.0.0.1:{server.server.metrics_port}/metrics", timeout=5
            )
            .read()
            .decode()
        )
    assert 'fleetmind_inference_requests_total{model="m",status="OK"} 1.0' in page
    assert 'fleetmind_inference_failures_total{model="m",status="INVALID_ARGUMENT"} 1.0' in page
    assert 'fleetmind_inference_batch_rows_count{model="m"} 1.0' in page
    assert "fleetmind_inference_queue_seconds_bucket" in page
    assert "fleetmind_inference_latency_seconds_bucket" in page
    assert 'fleetmind_inference_in_flight{model="m"} 0.0' in page


def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def test_new_checkpoint_in_run_dir_is_swapped_in(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_toy_checkpoint(run, seed=1, version=1)
    with ServerThread(run, _config(reload_interval_s=0.1)) as server:
        client = Client(f"127.0.0.1:{server.port}")
        with client:
            assert client.model_metadata("m").versions == ("1",)
            write_toy_checkpoint(run, seed=2, version=2)
            _wait_for(lambda: client.model_metadata("m").versions == ("2",))
            expected = toy_agent(seed=2).decide_batch(OBS).outputs["value"]
            np.testing.assert_allclose(client.infer("m", OBS)["value"], expected, rtol=1e-5)


def test_repository_versions_bad_version_keeps_old_one_serving(tmp_path: Path) -> None:
    write_toy_checkpoint(tmp_path / "pole" / "1", seed=1, version=1)
    write_toy_checkpoint(tmp_path / "other" / "1", seed=5, version=1)
    with ServerThread(tmp_path, _config(reload_interval_s=0.1, model_name=None)) as server:
        repo = server.server.repository
        assert repo.names() == ["other", "pole"]
        with Client(f"127.0.0.1:{server.port}") as client:
            write_toy_checkpoint(tmp_path / "pole" / "2", seed=2, version=2)
            _wait_for(lambda: client.model_metadata("pole").versions == ("1", "2"))
            assert client.infer("pole", OBS, version="1")["action"].shape == (4,)
            broken = tmp_path / "pole" / "3" / "checkpoints"
            broken.mkdir(parents=True)
            (broken / "latest.json").write_text('{"file": "ckpt-000000000001.pt"}')
            _wait_for(lambda: ("pole", "3") in repo.failures)
            assert client.model_metadata("pole").versions == ("1", "2")
            assert client.infer("pole", OBS)["action"].shape == (4,)
            shutil.rmtree(tmp_path / "pole" / "1")
            _wait_for(lambda: client.model_metadata("pole").versions == ("2",))


def test_request_past_its_deadline_is_not_computed(tmp_path: Path) -> None:
    write_toy_checkpoint(tmp_path / "run", seed=1, delay_s=0.5)
    config = _config(forward_in_thread=True, max_queue_delay_us=0)
    with ServerThread(tmp_path / "run", config) as server:
        policy = server.server.repository.get("m").loaded.agent.policy
        seen_before = list(policy.rows_seen)  # type: ignore[attr-defined]
        target = f"127.0.0.1:{server.port}"

        def call_slowly() -> None:
            with Client(target) as client:
                client.infer("m", np.ones((3, 4)))

        slow = threading.Thread(target=call_slowly)
        slow.start()
        _wait_for(lambda: len(policy.rows_seen) > len(seen_before))  # type: ignore[attr-defined]
        hurried = Client(target, timeout_s=0.1, max_attempts=1)
        with hurried, pytest.raises(UnavailableError, match="DEADLINE_EXCEEDED"):
            hurried.infer("m", np.ones((5, 4)))
        slow.join(timeout=10)
        time.sleep(0.3)  # the batcher had its chance to (wrongly) run the expired request
        assert policy.rows_seen[len(seen_before) :] == [3]  # type: ignore[attr-defined]
