"""With TLS and a token configured, the learner refuses clients without them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.learner_harness import LearnerThread, trajectory

from fleetmind.core.errors import AuthenticationError, UnavailableError
from fleetmind.rpc.channel import ChannelConfig
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.server import ServerConfig
from fleetmind.rpc.training_codec import chunk_pb
from fleetmind.runtime.actor.client import GrpcLearnerClient

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
    session = c.register(pb.RegisterRequest(actor_id="ok", num_envs=2))
    assert session.session_id
    msg = chunk_pb(
        trajectory(version=session.version), session.session_id, session.incarnation, None
    )
    assert c.push([msg]).accepted == 1
    # The sync exchange stream passes the same checks: the same chunk again is dropped
    # (one per version) and answered with the version the first one fed.
    stream = c.exchange()
    stream.send(msg)
    answer = stream.receive()
    while not answer.HasField("push"):  # keep-alive while the update runs
        answer = stream.receive()
    assert answer.push.dropped == 1
    assert answer.weights.version == answer.push.version > session.version
    stream.close()
    c.close()


def test_client_without_token_is_unauthenticated_and_ignored(
    learner: LearnerThread, certs: tuple[Path, Path]
) -> None:
    c = client(learner, certs[0], None)
    with pytest.raises(AuthenticationError, match="UNAUTHENTICATED"):
        c.register(pb.RegisterRequest(actor_id="intruder", num_envs=2))
    with pytest.raises(AuthenticationError):
        c.push([chunk_pb(trajectory(), "x", learner.run.core.incarnation, None)])
    stream = c.exchange()
    stream.send(chunk_pb(trajectory(), "x", learner.run.core.incarnation, None))
    with pytest.raises(AuthenticationError, match="UNAUTHENTICATED"):
        stream.receive()
    stream.close()
    c.close()
    wrong = client(learner, certs[0], "guess")
    with pytest.raises(AuthenticationError, match="invalid bearer token"):
        wrong.register(pb.RegisterRequest(actor_id="intruder", num_envs=2))
    wrong.close()
    assert all(v.actor_id != "intruder" for v in learner.run.core.sessions.values())


def test_client_without_tls_fails_the_handshake(learner: LearnerThread) -> None:
    c = client(learner, None, TOKEN)
    with pytest.raises(UnavailableError):
        c.register(pb.RegisterRequest(actor_id="plain", num_envs=2))
    c.close()
    assert all(v.actor_id != "plain" for v in learner.run.core.sessions.values())
