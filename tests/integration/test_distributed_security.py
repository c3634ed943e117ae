"""With TLS and a token configured, the learner refuses clients without them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.learner_harness import LearnerThread, cartpole_chunk

from fleetmind.core.errors import AuthenticationError, UnavailableError
from fleetmind.rpc.channel import ChannelConfig
from fleetmind.rpc.learner_client import GrpcLearnerClient
from fleetmind.rpc.server import ServerConfig

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def learner(
    tmp_path_factory: pytest.TempPathFactory, certs: tuple[Path, Path]
) -> Iterator[LearnerThread]:
    cert, key = certs
    config = ServerConfig(tls_cert=cert, tls_key=key, tokens=(TOKEN,), reflection=False)
    with LearnerThread(tmp_path_factory.mktemp("run") / "run", config) as running:
        yield running


def client(learner: LearnerThread, ca: Path | None, token: str | None) -> GrpcLearnerClient:
    config = ChannelConfig(tls_ca=ca, tls_server_name="localhost") if ca else ChannelConfig()
    return GrpcLearnerClient(learner.address, config, token, timeout_s=5)


def test_client_with_tls_and_token_is_served(
    learner: LearnerThread, certs: tuple[Path, Path]
) -> None:
    c = client(learner, certs[0], TOKEN)
    session = c.register("ok", "", 2, 0)
    assert session.session_id
    chunk = cartpole_chunk(session.session_id, session.incarnation, version=session.version)
    assert c.push([chunk]).accepted == 1
    # The sync exchange stream passes the same checks: the session's next chunk of the
    # same version is dropped (one per version) and answered with the version the first
    # one fed (the stream's keep-alives while the update runs are read past).
    chunk.seq = 1
    stream = c.exchange()
    answer = stream.round(chunk)
    assert answer.reply.dropped == 1
    assert answer.weights is not None
    assert answer.weights.version == answer.reply.version > session.version
    stream.close()
    c.close()


def test_client_without_token_is_unauthenticated_and_ignored(
    learner: LearnerThread, certs: tuple[Path, Path]
) -> None:
    c = client(learner, certs[0], None)
    with pytest.raises(AuthenticationError, match="UNAUTHENTICATED"):
        c.register("intruder", "", 2, 0)
    chunk = cartpole_chunk("x", learner.run.core.incarnation)
    with pytest.raises(AuthenticationError):
        c.push([chunk])
    stream = c.exchange()
    with pytest.raises(AuthenticationError, match="UNAUTHENTICATED"):
        stream.round(chunk)
    stream.close()
    c.close()
    wrong = client(learner, certs[0], "guess")
    with pytest.raises(AuthenticationError, match="invalid bearer token"):
        wrong.register("intruder", "", 2, 0)
    wrong.close()
    assert all(v.actor_id != "intruder" for v in learner.run.core.sessions.values())


def test_client_without_tls_fails_the_handshake(learner: LearnerThread) -> None:
    c = client(learner, None, TOKEN)
    with pytest.raises(UnavailableError):
        c.register("plain", "", 2, 0)
    c.close()
    assert all(v.actor_id != "plain" for v in learner.run.core.sessions.values())
