"""fleetmind serve / call as real processes: SIGTERM drain, CLI errors, two replicas."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fleetmind.cli.main import main
from fleetmind.serve import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.testing import ServerThread, write_toy_checkpoint

from .procs import serve_command

LOADER = "fleetmind.serve.testing:toy_loader"


def _spawn(run_dir: Path, port: int = 0, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    cmd = serve_command(run_dir, LOADER, "--port", str(port), *extra)
    log = run_dir.parent / f"serve-{time.monotonic_ns()}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stderr=sink)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"\(port (\d+)\)", log.read_text())
        if match:
            return proc, int(match.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"server did not start (exit {proc.wait()}): {log.read_text()[-2000:]}")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    write_toy_checkpoint(tmp_path / "run", seed=4, version=1, delay_s=0.3)
    return tmp_path / "run"


def test_sigterm_finishes_in_flight_requests_then_exits_zero(run_dir: Path) -> None:
    proc, port = _spawn(run_dir)
    results: list[object] = []
    with Client(f"127.0.0.1:{port}", timeout_s=10) as client:
        client.infer("m", np.zeros((1, 4)))  # warm connection
        worker = threading.Thread(target=lambda: results.append(client.infer("m", np.ones((2, 4)))))
        worker.start()
        time.sleep(0.1)  # the request is inside its 0.3 s forward pass
        proc.send_signal(signal.SIGTERM)
        worker.join(timeout=20)
    assert proc.wait(timeout=30) == 0
    assert len(results) == 1


def test_sigterm_the_moment_it_says_it_serves_still_drains_and_exits_zero(run_dir: Path) -> None:
    # a pod deleted right after it started: the signal must reach the drain, not kill it
    for _ in range(2):
        proc, _port = _spawn(run_dir)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_call_command_prints_actions(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = ServeConfig(host="127.0.0.1", port=0, model_name="m", reload_interval_s=None)
    with ServerThread(run_dir, config) as server:
        call = ["call", f"127.0.0.1:{server.port}", "--model", "m"]
        assert main([*call, "--obs", "[0.1, 0, 0, 0]"]) == 0
        assert capsys.readouterr().out.strip() in ("0", "1")
        assert main([*call, "--obs", "[[0, 0, 0, 0], [1, 1, 1, 1]]", "--json"]) == 0
        assert '"action_probs"' in capsys.readouterr().out
        assert main([*call, "--obs", "[1, 2]"]) == 2
        assert "expected [B, 4]" in capsys.readouterr().err
        assert main([*call, "--obs", "[1, oops]"]) == 2
        assert "--obs must be a JSON number list" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-batch-size", "0"], "max_batch_size=0 must be >= 1"),
        (["--max-wait-ms", "-5"], "max_wait_ms=-5.0 must be >= 0"),
        (["--max-wait-ms", "nan"], "max_wait_ms=nan must be >= 0"),
        (["--tls-cert", "x.pem"], "TLS needs both"),
        (["--port", "abc"], "cannot read 'abc'"),
        (["--loader", "no.such.module:f"], "cannot import loader"),
    ],
)
def test_serve_bad_flags_exit_2(
    run_dir: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(run_dir), *args]) == 2
    assert message in capsys.readouterr().err


def test_serve_empty_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(tmp_path), "--port", "0", "--host", "127.0.0.1"]) == 2
    assert "nothing to serve" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_serve_open_to_the_network_refuses_to_start(run_dir: Path) -> None:
    # The default host is 0.0.0.0: without a token or mutual TLS, refused before loading.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETMIND_")}
    proc = subprocess.run(
        [sys.executable, "-m", "fleetmind", "serve", str(run_dir), "--port", "0",
         "--loader", LOADER],
        check=False, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("fleetmind serve: error: refusing to listen on 0.0.0.0:0")
    for flag in ("--insecure", "--token-file", "--tls-cert", "--tls-key", "--tls-client-ca"):
        assert flag in lines[0]


def test_serve_told_insecure_starts_and_warns_in_its_log(run_dir: Path) -> None:
    proc, port = _spawn(run_dir, 0, "--host", "0.0.0.0", "--insecure", "--http-port", "0")
    try:
        with Client(f"127.0.0.1:{port}", timeout_s=10) as client:
            assert client.infer("m", np.zeros((1, 4))) is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    (log,) = run_dir.parent.glob("serve-*.log")
    text = log.read_text()
    assert f"INSECURE: listening on 0.0.0.0:{port} with neither a token nor" in text
    http_port = re.search(r"serving HTTP/REST on 0\.0\.0\.0:(\d+)", text)
    assert http_port, text
    assert f"INSECURE: listening on 0.0.0.0:{http_port.group(1)} with neither" in text


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Path, list[int], list[subprocess.Popen[bytes]]]]:
    write_toy_checkpoint(tmp_path / "run", seed=4, version=1)
    procs, ports = [], []
    for _ in range(2):
        proc, port = _spawn(tmp_path / "run", 0, "--grace-s", "5")
        procs.append(proc)
        ports.append(port)
    yield tmp_path / "run", ports, procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def test_replica_restart_under_load_fails_no_request(replicas) -> None:  # type: ignore[no-untyped-def]
    run_dir, ports, procs = replicas
    failures: list[BaseException] = []
    done = threading.Event()
    count = [0]

    def load() -> None:
        with Client([f"127.0.0.1:{p}" for p in ports], timeout_s=10) as client:
            while not done.is_set() and count[0] < 5000:
                try:
                    client.infer("m", np.zeros((2, 4)))
                    count[0] += 1
                except Exception as exc:
                    failures.append(exc)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(1.0)
    procs[0].send_signal(signal.SIGTERM)
    assert procs[0].wait(timeout=30) == 0
    procs[0], _ = _spawn(run_dir, ports[0], "--grace-s", "5")
    time.sleep(1.5)
    done.set()
    for w in workers:
        w.join(timeout=30)
    assert failures == []
    assert count[0] > 50
