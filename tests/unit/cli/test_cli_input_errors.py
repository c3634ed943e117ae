"""Inputs the CLI cannot use: one line naming the real problem on stderr, exit 2.

The TLS case runs a real process: gRPC's C core writes its own log lines to the
process's stderr, which an in-process capture would not see.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from fleetmind.cli.main import main
from fleetmind.serve.testing import write_toy_checkpoint

TINY = ["--steps", "64", "--envs", "2", "--ppo.rollout-steps", "8", "--ppo.minibatch-size", "16"]


def run_main(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capfd.readouterr().err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_config_file_that_is_not_utf8(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "latin1.yaml"
    config.write_bytes("# réglages\nenvs: 2\n".encode("latin-1"))
    code, err = run_main(
        capfd, "train", "CartPole-v1", "--config", str(config), "--run-dir", str(tmp_path / "r")
    )
    assert code == 2
    line = one_line(err)
    assert f"config file {config} is not UTF-8 text (byte 0xe9 at offset 3)" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("command", "name", "message"),
    [
        (["solve-mdp"], "mdp.json", "MDP file '{}' is not UTF-8 text"),
        (["bandit", "--rewards"], "rewards.csv", "reward file {} is not UTF-8 text"),
    ],
)
def test_input_files_that_are_not_utf8(
    capfd: pytest.CaptureFixture[str], tmp_path: Path, command: list[str], name: str, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xff\xfe0\x001\x00")
    code, err = run_main(capfd, *command, str(path))
    assert code == 2
    assert message.format(path) in one_line(err)


def test_run_directory_that_cannot_be_created(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    run_dir = blocker / "run"
    code, err = run_main(capfd, "train", "CartPole-v1", "--run-dir", str(run_dir), *TINY)
    assert code == 2
    assert f"cannot create run directory {run_dir}: Not a directory" in one_line(err)


def test_tls_certificate_that_is_not_pem(tmp_path: Path) -> None:
    write_toy_checkpoint(tmp_path / "run", seed=1)
    cert, key = tmp_path / "cert.der", tmp_path / "key.pem"
    cert.write_bytes(b"\x30\x82\x01\x0a" + bytes(64))  # DER starts with a SEQUENCE tag
    key.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    proc = subprocess.run(
        [sys.executable, "-m", "fleetmind", "serve", str(tmp_path / "run"),
         "--loader", "fleetmind.serve.testing:toy_loader", "--host", "127.0.0.1",
         "--port", "0", "--tls-cert", str(cert), "--tls-key", str(key)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc.stderr)
    assert f"TLS certificate {cert} is not PEM (no '-----BEGIN CERTIFICATE-----' line)" in line
    assert "listen" not in line


@pytest.mark.parametrize("timeout", ["-1", "0", "nan"])
def test_call_with_a_timeout_that_is_not_positive(
    capfd: pytest.CaptureFixture[str], timeout: str
) -> None:
    code, err = run_main(
        capfd, "call", "127.0.0.1:1", "--model", "m", "--obs", "[0]", "--timeout", timeout
    )
    assert code == 2
    assert "--timeout must be a positive number of seconds" in one_line(err)
