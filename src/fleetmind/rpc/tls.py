"""TLS and mutual-TLS credentials from PEM files.

The files are checked here, before gRPC sees them: gRPC reports a certificate it
cannot parse only as a failure to bind the port (and logs to stderr), which
sends the user looking for a port conflict.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import grpc

from fleetmind.core.errors import ConfigError

_CERT = ("CERTIFICATE", re.compile(rb"-----BEGIN CERTIFICATE-----"), "x509")
_KEY = ("PRIVATE KEY", re.compile(rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"), "pkey")


def _read(path: Path | None, what: str, pem: tuple[str, re.Pattern[bytes], str]) -> bytes | None:
    """The bytes of ``path``; ConfigError if unreadable or not the PEM block expected."""
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    label, marker, tool = pem
    if not marker.search(data):
        raise ConfigError(
            f"{what} {path} is not PEM (no '-----BEGIN {label}-----' line); pass a PEM "
            f"file, e.g. converted from DER with: openssl {tool} -inform der -in {path}"
        )
    return data


def _check_pair(cert: Path, key: Path) -> None:
    """ConfigError unless ``key`` is the unencrypted private key of ``cert``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        raise ConfigError(
            f"TLS certificate {cert} and private key {key} cannot be used together "
            f"({exc.reason or exc}); pass a PEM certificate and its unencrypted key"
        ) from None


def server_credentials(
    cert: Path, key: Path, client_ca: Path | None = None
) -> grpc.ServerCredentials:
    """TLS with ``cert``/``key``; with ``client_ca`` every client must show a cert it signed."""
    cert_pem = _read(cert, "TLS certificate", _CERT)
    key_pem = _read(key, "TLS private key", _KEY)
    if cert_pem is None or key_pem is None:  # pragma: no cover - _read only returns None for None
        raise ConfigError("TLS needs both a certificate and a private key")
    _check_pair(cert, key)
    ca_pem = _read(client_ca, "client CA certificate", _CERT)
    return grpc.ssl_server_credentials(
        [(key_pem, cert_pem)],
        root_certificates=ca_pem,
        require_client_auth=ca_pem is not None,
    )


def server_ssl_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """The same TLS as :func:`server_credentials`, for an HTTP server (TLS 1.2 or newer)."""
    _read(cert, "TLS certificate", _CERT)
    _read(key, "TLS private key", _KEY)
    _check_pair(cert, key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        _read(client_ca, "client CA certificate", _CERT)
        context.load_verify_locations(cafile=str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def channel_credentials(
    ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials:
    """TLS trusting ``ca`` (system roots when ``None``); ``cert``+``key`` for mutual TLS."""
    if (cert is None) != (key is None):
        raise ConfigError("mutual TLS needs both a client certificate and its key")
    cert_pem = _read(cert, "TLS certificate", _CERT)
    key_pem = _read(key, "TLS private key", _KEY)
    if cert is not None and key is not None:
        _check_pair(cert, key)
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca, "CA certificate", _CERT),
        private_key=key_pem,
        certificate_chain=cert_pem,
    )
