"""TLS files are checked before gRPC sees them (gRPC reports them as bind failures)."""

import shutil
import subprocess
from pathlib import Path

import pytest

from fleetmind.core.errors import ConfigError
from fleetmind.rpc.tls import channel_credentials, server_credentials


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_a_matching_pem_pair_is_accepted(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "a")
    server_credentials(cert, key, client_ca=cert)
    channel_credentials(ca=cert, cert=cert, key=key)


def test_a_key_of_another_certificate_is_named(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path, "a")
    _, other_key = _self_signed(tmp_path, "b")
    with pytest.raises(ConfigError, match=r"a\.pem and private key .*b\.key cannot be used"):
        server_credentials(cert, other_key)


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("cert", r"TLS certificate .* is not PEM \(no '-----BEGIN CERTIFICATE-----' line\)"),
        ("key", r"TLS private key .* is not PEM \(no '-----BEGIN PRIVATE KEY-----' line\)"),
        ("ca", r"CA certificate .* is not PEM"),
    ],
)
def test_files_that_are_not_pem_are_named(tmp_path: Path, which: str, message: str) -> None:
    cert, key = _self_signed(tmp_path, "a")
    der = tmp_path / "file.der"
    der.write_bytes(b"\x30\x82\x01\x0a" + bytes(32))
    files = {"cert": cert, "key": key, "ca": cert} | {which: der}
    with pytest.raises(ConfigError, match=message):
        channel_credentials(ca=files["ca"], cert=files["cert"], key=files["key"])
