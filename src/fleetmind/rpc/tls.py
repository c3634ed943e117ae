"""TLS and mutual-TLS credentials from PEM files."""

from __future__ import annotations

from pathlib import Path

import grpc

from fleetmind.core.errors import ConfigError


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc


def server_credentials(
    cert: Path, key: Path, client_ca: Path | None = None
) -> grpc.ServerCredentials:
    """TLS with ``cert``/``key``; with ``client_ca`` every client must show a cert it signed."""
    cert_pem = _read(cert, "TLS certificate")
    key_pem = _read(key, "TLS private key")
    if cert_pem is None or key_pem is None:  # pragma: no cover - _read only returns None for None
        raise ConfigError("TLS needs both a certificate and a private key")
    ca_pem = _read(client_ca, "client CA certificate")
    return grpc.ssl_server_credentials(
        [(key_pem, cert_pem)],
        root_certificates=ca_pem,
        require_client_auth=ca_pem is not None,
    )


def channel_credentials(
    ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials:
    """TLS trusting ``ca`` (system roots when ``None``); ``cert``+``key`` for mutual TLS."""
    if (cert is None) != (key is None):
        raise ConfigError("mutual TLS needs both a client certificate and its key")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca, "CA certificate"),
        private_key=_read(key, "TLS private key"),
        certificate_chain=_read(cert, "TLS certificate"),
    )
