"""The metrics pages of the inference server and of the learner: a bearer token,
HTTPS with a test CA, and the address they bind; real HTTP requests throughout."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from tests.integration.pki import make_test_pki

from fleetmind.core.errors import ConfigError
from fleetmind.rpc.metrics_http import MetricsPage, MetricsPageConfig
from fleetmind.runtime.dist_config import LearnerServeConfig
from fleetmind.runtime.metrics import PrometheusExporter
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.testing import ServerThread, write_toy_checkpoint

TOKEN = "metrics-s3cret"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "metrics-tokens"
    path.write_text(f"# scrapers\nother-token\n{TOKEN}\n")
    return path


def _get(url: str, token: str | None = None, ca: Path | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=str(ca)) if ca is not None else None
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def served(tmp_path: Path, pki: Path, token_file: Path) -> Iterator[ServerThread]:
    write_toy_checkpoint(tmp_path / "run", seed=1)
    config = ServeConfig(
        host="127.0.0.1",
        port=0,
        model_name="m",
        reload_interval_s=None,
        metrics_port=0,
        metrics_tls_cert=pki / "server.pem",
        metrics_tls_key=pki / "server.key",
        metrics_token_file=token_file,
    )
    with ServerThread(tmp_path / "run", config) as server:
        yield server


def test_inference_metrics_need_the_token_over_tls(served: ServerThread, pki: Path) -> None:
    url = f"https://localhost:{served.server.metrics_port}/metrics"
    assert _get(url, ca=pki / "ca.pem")[0] == 401
    assert _get(url, token="wrong", ca=pki / "ca.pem")[0] == 401
    status, page = _get(url, token=TOKEN, ca=pki / "ca.pem")
    assert status == 200
    assert "fleetmind_inference_in_flight" in page


def test_inference_metrics_refuse_plain_http_when_tls_is_on(served: ServerThread) -> None:
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        _get(f"http://localhost:{served.server.metrics_port}/metrics", token=TOKEN)
    untrusted = ssl.create_default_context()  # system roots: the test CA is not one
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(
            f"https://localhost:{served.server.metrics_port}/metrics", context=untrusted
        )


def test_a_stalled_tls_client_does_not_block_other_scrapes(served: ServerThread, pki: Path) -> None:
    with socket.create_connection(("127.0.0.1", served.server.metrics_port)):
        # connected, never handshakes: the page must still answer others meanwhile
        url = f"https://localhost:{served.server.metrics_port}/metrics"
        assert _get(url, token=TOKEN, ca=pki / "ca.pem")[0] == 200


def test_inference_metrics_bind_the_server_host_by_default(tmp_path: Path) -> None:
    write_toy_checkpoint(tmp_path / "run", seed=1)
    config = ServeConfig(
        host="127.0.0.1", port=0, model_name="m", reload_interval_s=None, metrics_port=0
    )
    with ServerThread(tmp_path / "run", config) as server:
        page = server.server.metrics._page
        assert page is not None
        assert page._http.server_address[0] == "127.0.0.1"
        assert _get(f"http://127.0.0.1:{server.server.metrics_port}/metrics")[0] == 200


def test_learner_metrics_flags_give_token_tls_and_the_listen_host(
    pki: Path, token_file: Path
) -> None:
    flags = LearnerServeConfig(
        metrics_tls_cert=pki / "server.pem",
        metrics_tls_key=pki / "server.key",
        metrics_token_file=token_file,
    )
    page = flags.metrics_page(0, "127.0.0.1:50051")
    assert page.host == "127.0.0.1"
    assert LearnerServeConfig().metrics_page(0, "unix:/tmp/learner.sock").host == "127.0.0.1"
    assert LearnerServeConfig(metrics_host="::1").metrics_page(0, "0.0.0.0:1").host == "::1"
    exporter = PrometheusExporter(page)
    try:
        exporter.update({"version": 3})
        url = f"https://localhost:{exporter.port}/metrics"
        assert _get(url, ca=pki / "ca.pem")[0] == 401
        status, text = _get(url, token=TOKEN, ca=pki / "ca.pem")
    finally:
        exporter.close()
    assert status == 200
    assert "fleetmind_learner_version 3.0" in text


def test_half_a_tls_pair_is_a_config_error(pki: Path) -> None:
    with pytest.raises(ConfigError, match="metrics-tls-key"):
        LearnerServeConfig(metrics_tls_cert=pki / "server.pem").metrics_page(0, "127.0.0.1:1")
    with pytest.raises(ConfigError, match="metrics-tls-key"):
        ServeConfig(metrics_tls_cert=pki / "server.pem").validate()
    with pytest.raises(ConfigError, match="certificate and its key"):
        MetricsPage(CollectorRegistry(), MetricsPageConfig(0, tls_key=pki / "server.key"))
