"""A server open to the network needs a token or mutual TLS, or an explicit --insecure."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from fleetmind.core.errors import ConfigError
from fleetmind.rpc.exposure import check_exposure, is_local
from fleetmind.rpc.server import ServerConfig, create_server


def build(address: str, config: ServerConfig) -> None:
    """Create (and drop, unstarted) a server on ``address``, on an event loop of its own."""

    async def create() -> None:
        server, _ = create_server(address, config)
        await server.stop(None)

    asyncio.run(create())


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:50051",
        "127.9.8.7:0",
        "localhost:50051",
        "LOCALHOST:1",
        "[::1]:50051",
        "[::ffff:127.0.0.1]:50051",
        "unix:/tmp/learner.sock",
        "unix-abstract:learner",
    ],
)
def test_loopback_and_unix_sockets_are_local(address: str) -> None:
    assert is_local(address)
    assert not check_exposure(address, guarded=False, insecure=False)


@pytest.mark.parametrize(
    "address",
    ["0.0.0.0:50051", "[::]:50051", ":50051", "10.0.0.5:50051", "learner.example:50051",
     "localhost.example:1", "[::ffff:10.0.0.5]:1"],
)  # fmt: skip
def test_anything_else_needs_credentials_or_insecure(address: str) -> None:
    assert not is_local(address)
    with pytest.raises(ConfigError, match="--insecure") as refused:
        check_exposure(address, guarded=False, insecure=False)
    message = str(refused.value)
    assert "\n" not in message
    for flag in ("--token-file", "--tls-cert", "--tls-key", "--tls-ca", "--tls-client-ca"):
        assert flag in message
    assert not check_exposure(address, guarded=True, insecure=False)
    assert check_exposure(address, guarded=True, insecure=True) is False
    assert check_exposure(address, guarded=False, insecure=True)


def test_create_server_refuses_an_open_port_and_warns_about_an_insecure_one(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"refusing to listen on 0\.0\.0\.0:0"):
        build("0.0.0.0:0", ServerConfig())
    # Server-side TLS alone encrypts but admits every caller: still refused.
    pem = tmp_path / "any.pem"  # never read: only whether it is configured counts
    tls_only = ServerConfig(tls_cert=pem, tls_key=pem)
    assert ServerConfig(tokens=("t",)).open_at("0.0.0.0:0") is False
    with pytest.raises(ConfigError, match="mutual TLS"):
        tls_only.open_at("0.0.0.0:0")
    mutual = ServerConfig(tls_cert=pem, tls_key=pem, tls_client_ca=pem)
    assert mutual.open_at("0.0.0.0:0") is False
    with caplog.at_level(logging.WARNING, "fleetmind.rpc.server"):
        build("0.0.0.0:0", ServerConfig(insecure=True, reflection=False))
    assert "INSECURE: listening on 0.0.0.0:" in caplog.text
    assert "0.0.0.0:0 " not in caplog.text  # the port it got, not 0
    caplog.clear()
    with caplog.at_level(logging.WARNING, "fleetmind.rpc.server"):
        build("127.0.0.1:0", ServerConfig(insecure=True, reflection=False))
    assert "INSECURE" not in caplog.text  # loopback is not open, whatever the flag says
