"""Build the image (scripts/build-image) and serve a trained run inside it.

Marked ``image``: not in the default run (``pytest -m image``). Needs root, buildah
and debootstrap (``apt-get install -y buildah debootstrap``) and the package
registries; the first build takes minutes. Prints the image size and build time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fleetmind.deploy.serve_pod import container
from fleetmind.deploy.serve_spec import ServeDeployConfig, checked

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.image,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(os.geteuid() != 0, reason="buildah and debootstrap need root"),
    pytest.mark.skipif(
        not (shutil.which("buildah") and shutil.which("debootstrap")),
        reason="apt-get install -y buildah debootstrap",
    ),
]


@pytest.fixture(scope="module")
def image() -> str:
    started = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "scripts" / "build-image")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps({**report, "test_build_wall_s": round(time.monotonic() - started, 1)}))
    return str(report["tag"])


@pytest.fixture
def working(image: str) -> Iterator[str]:
    name = subprocess.run(
        ["buildah", "from", image], capture_output=True, text=True, check=True
    ).stdout.strip()
    yield name
    subprocess.run(["buildah", "rm", name], capture_output=True, check=False)


def _in(working: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["buildah", "run", "--isolation", "chroot", working, "--", *command],
        capture_output=True,
        text=True,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _entrypoint(image: str) -> list[str]:
    config = json.loads(
        subprocess.run(
            ["buildah", "inspect", "--type", "image", image], capture_output=True, check=True
        ).stdout
    )["OCIv1"]["config"]
    return list(config["Entrypoint"])


def test_runs_as_a_user_without_compilers(working: str) -> None:
    assert _in(working, "id", "-u").stdout.strip() == "10001"
    for tool in ("gcc", "cc", "g++", "make"):
        assert _in(working, "sh", "-c", f"command -v {tool}").returncode != 0, tool
    assert _in(working, "fleetmind", "--version").returncode == 0


def test_serves_a_trained_run_until_health_says_serving(
    image: str, working: str, tmp_path: Path
) -> None:
    import fleetmind
    from fleetmind.serve import Client

    run = tmp_path / "cartpole"
    fleetmind.train("CartPole-v1", steps=2048, run_dir=str(run), progress=False)
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o755 if path.is_dir() else 0o644)
    # No Secret can be mounted here: the pod runs as rendered with --insecure.
    pod = container(checked(ServeDeployConfig(name="cartpole", insecure=True), run))
    env = {e["name"]: e["value"] for e in pod["env"]}
    port, metrics = _free_port(), _free_port()  # the host's network: ports must be free
    env.update(FLEETMIND_PORT=str(port), FLEETMIND_METRICS_PORT=str(metrics))
    mount = next(m["mountPath"] for m in pod["volumeMounts"] if m["name"] == "models")
    cmd = ["buildah", "run", "--isolation", "chroot", "--network", "host"]
    cmd += ["-v", f"{run}:{mount}:ro"]
    cmd += [arg for k, v in env.items() for arg in ("-e", f"{k}={v}")]
    cmd += [working, "--", *_entrypoint(image), *pod["args"]]
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        _wait_serving(f"127.0.0.1:{port}", proc, log)
        print(json.dumps({"image_start_to_serving_s": round(time.monotonic() - started, 2)}))
        with Client([f"127.0.0.1:{port}"]) as client:
            out = client.infer("cartpole", np.zeros((1, 4), np.float32))
        assert "action" in out
        server = _server_pid(proc.pid)
        os.kill(server, signal.SIGTERM)  # the server itself, as the kubelet signals PID 1
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_serving(target: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                reply = stub.Check(
                    health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService"),
                    timeout=1,
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.5)
    raise AssertionError(f"no SERVING within 180 s: {log.read_text()[-3000:]}")


def _server_pid(root: int) -> int:
    """The ``fleetmind serve`` process under buildah's process tree."""
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        interpreter = Path(cmdline[0].decode(errors="replace")).name
        if interpreter.startswith("python") and b"serve" in cmdline:
            return pid
        pending += [int(c) for c in children]
    raise AssertionError("no fleetmind serve process under buildah run")
