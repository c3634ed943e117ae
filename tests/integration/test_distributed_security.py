"""With TLS and a token configured, the learner refuses clients without them; without
either it does not listen beyond loopback unless told --insecure."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from tests.integration.learner_harness import LearnerThread, cartpole_chunk
from tests.integration.procs import kill_tree

from fleetmind.core.errors import AuthenticationError, UnavailableError
from fleetmind.rpc.auth import bearer_metadata
from fleetmind.rpc.channel import ChannelConfig
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.generated import training_pb2_grpc as pb_grpc
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
    chunk = cartpole_chunk(
        session.session_id,
        session.incarnation,
        secret=session.session_secret,
        version=session.version,
    )
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


def _environment() -> dict[str, str]:
    """This environment without FLEETMIND_* settings (a token there would change the test)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FLEETMIND_")}


def test_a_learner_open_to_the_network_refuses_to_start(tmp_path: Path) -> None:
    # The default address is 0.0.0.0:50051: without a token or mutual TLS, refused.
    proc = subprocess.run(
        [sys.executable, "-m", "fleetmind", "learner", "CartPole-v1", "--run-dir",
         str(tmp_path / "run")],
        check=False, capture_output=True, text=True, timeout=120, env=_environment(),
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("fleetmind learner: error: refusing to listen on 0.0.0.0:50051")
    for flag in ("--insecure", "--token-file", "--tls-cert", "--tls-key", "--tls-ca"):
        assert flag in lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("guard", ["insecure", "token"])
def test_a_learner_beyond_loopback_starts_with_a_token_or_when_told_insecure(
    tmp_path: Path, guard: str
) -> None:
    token_file = tmp_path / "token.txt"
    token_file.write_text(TOKEN + "\n")
    flags = ["--insecure"] if guard == "insecure" else ["--token-file", str(token_file)]
    log_path = tmp_path / "learner.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetmind", "learner", "CartPole-v1", "--listen", "0.0.0.0:0",
             "--run-dir", str(tmp_path / "run"), "--no-progress", *flags],
            stdout=subprocess.PIPE, stderr=log, text=True, env=_environment(),
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # {"listening": "0.0.0.0:PORT"}, once the server is up
        assert line, log_path.read_text()[-3000:]
        port = json.loads(line)["listening"].rpartition(":")[2]
        metadata = None if guard == "insecure" else bearer_metadata(TOKEN)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            status = pb_grpc.LearnerStub(channel).GetStatus(
                pb.StatusRequest(), timeout=30, metadata=metadata
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        finally:
            kill_tree(proc)
    log_text = log_path.read_text()
    assert status.insecure == (guard == "insecure")
    warning = f"INSECURE: listening on 0.0.0.0:{port} with neither a token nor mutual TLS"
    assert (warning in log_text) == (guard == "insecure")
