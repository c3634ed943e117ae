"""``fleetmind serve --workers N`` as real processes: one port, one page, no lost calls."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fleetmind.cli.main import main
from fleetmind.core.cpus import usable_cpus
from fleetmind.serve import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.testing import write_toy_checkpoint

from .procs import children, serve_command, wait_for

SRC = Path(__file__).resolve().parents[2] / "src"

# A loader the workers import by name: it fails or waits in one worker only.
LOADER_MODULE = """
import os, time
from fleetmind.core.errors import CheckpointError
from fleetmind.serve.testing import toy_loader

def loader(path):
    me = os.environ.get("FLEETMIND_WORKER")
    if me == os.environ.get("TOY_FAIL_WORKER"):
        raise CheckpointError(f"toy checkpoint refused in worker {me}")
    if me == os.environ.get("TOY_SLOW_WORKER"):
        time.sleep(float(os.environ["TOY_SLOW_S"]))
    return toy_loader(path)
"""

# A loader of an explainable (PPO) policy.
EXPLAIN_LOADER_MODULE = """
import numpy as np
from fleetmind.algos.registry import get_algorithm
from fleetmind.core.agent import Agent
from fleetmind.core.spaces import SpaceSpec
from fleetmind.serve.model import LoadedModel

def loader(path):
    box = SpaceSpec("box", (4,), "float32", low=(-np.inf,) * 4, high=(np.inf,) * 4)
    actions = SpaceSpec("discrete", (), "int64", n=2)
    spec = get_algorithm("ppo")
    learner = spec.build(spec.config_cls(), box, actions, 0)
    return LoadedModel(Agent(learner.inference_policy(), box, actions), "1", "fleetmind_ppo")
"""


class Served:
    """A ``fleetmind serve --workers`` process, its port, metrics port and log."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log
        self.port = 0
        self.metrics_port = 0

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def worker_pids(self) -> dict[int, int]:
        """The current pid of each worker, from the parent's log."""
        pids: dict[int, int] = {}
        for index, pid in re.findall(r"worker (\d+) started \(pid (\d+)\)", self.text()):
            pids[int(index)] = int(pid)
        return pids

    def metric(self, name: str) -> float:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            page = reply.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in page.splitlines() if line.startswith(name)
        )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    write_toy_checkpoint(tmp_path / "run", seed=4, version=1, delay_s=0.02)
    (tmp_path / "loaders").mkdir()
    (tmp_path / "loaders" / "worker_loader.py").write_text(LOADER_MODULE)
    (tmp_path / "loaders" / "explain_loader.py").write_text(EXPLAIN_LOADER_MODULE)
    return tmp_path / "run"


def _start(
    run_dir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    loader: str = "worker_loader:loader",
) -> Served:
    cmd = serve_command(run_dir, loader, *extra)
    paths = f"{run_dir.parent / 'loaders'}{os.pathsep}{SRC}"
    log = run_dir.parent / f"serve-{time.monotonic_ns()}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            cmd, stderr=sink, env={**os.environ, "PYTHONPATH": paths, **(env or {})}
        )
    return Served(proc, log)


def _ready(served: Served, timeout_s: float = 90) -> Served:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = served.text()
        match = re.search(r"\(port (\d+)\) with \d+ workers", text)
        if match:
            served.port = int(match.group(1))
            metrics = re.search(r"metrics on http://[\d.]+:(\d+)", text)
            served.metrics_port = int(metrics.group(1)) if metrics else 0
            return served
        if served.proc.poll() is not None:
            break
        time.sleep(0.05)
    served.proc.kill()
    raise AssertionError(f"workers did not start (exit {served.proc.wait()}): {served.text()}")


@pytest.fixture
def two_workers(run_dir: Path) -> Iterator[Served]:
    served = _ready(
        _start(run_dir, "--port", "0", "--workers", "2", "--metrics-port", "0", "--grace-s", "5")
    )
    try:
        yield served
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()


def _health(port: int) -> int | None:
    """The overall health status on a fresh connection (None: no answer)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2
            )
        except grpc.RpcError:
            return None
    return int(reply.status)


def test_a_bad_worker_count_is_one_line_and_exit_2(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for value in ("0", "-1", "many", "2.5"):
        code = main(["serve", str(run_dir), "--host", "127.0.0.1", f"--workers={value}"])
        err = capsys.readouterr().err.strip()
        assert code == 2
        assert len(err.splitlines()) == 1
        assert "workers" in err
        assert "auto" in err
    assert ServeConfig(workers="auto").worker_count() == usable_cpus()
    assert ServeConfig(workers="3").worker_count() == 3
    assert ServeConfig().worker_count() is None


def test_a_port_taken_by_another_program_is_one_clear_error(run_dir: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        served = _start(run_dir, "--port", str(port), "--workers", "2")
        assert served.proc.wait(timeout=60) == 2
    text = served.text()
    assert f"127.0.0.1:{port}" in text
    assert "in use" in text
    assert "Traceback" not in text
    assert "worker 0 started" not in text  # refused before any worker was spawned


def test_a_worker_that_cannot_load_stops_the_start_naming_it(run_dir: Path) -> None:
    served = _start(run_dir, "--port", "0", "--workers", "2", env={"TOY_FAIL_WORKER": "1"})
    assert served.proc.wait(timeout=90) == 2
    text = served.text()
    line = next(x for x in text.splitlines() if "could not start" in x)
    assert "worker 1 could not start:" in line
    assert "toy checkpoint refused in worker 1" in line
    assert "with 2 workers" not in text
    for pid in served.worker_pids().values():  # none is left serving half the port
        wait_for(lambda pid=pid: not _alive(pid), 20, f"worker pid {pid} to exit")


def test_ready_only_when_every_worker_is(run_dir: Path) -> None:
    served = _start(
        run_dir,
        "--port",
        "0",
        "--workers",
        "2",
        env={"TOY_SLOW_WORKER": "1", "TOY_SLOW_S": "4"},
    )
    try:
        # Worker 0 listens while worker 1 is still loading: its answer is NOT_SERVING.
        wait_for(lambda: "worker 0 fleetmind.serve.server: serving" in served.text(), 60, "w0")
        port = int(re.findall(r"\(port (\d+)\)", served.text())[0])
        if "with 2 workers" not in served.text():
            assert _health(port) == health_pb2.HealthCheckResponse.NOT_SERVING
        _ready(served)
        assert all(_health(port) == health_pb2.HealthCheckResponse.SERVING for _ in range(6))
    finally:
        served.proc.kill()
        served.proc.wait()


def test_one_page_sums_the_workers_and_sigterm_drains_them(two_workers: Served) -> None:
    sent = 0
    for _ in range(8):  # a fresh connection each: the kernel spreads them over workers
        with Client(f"127.0.0.1:{two_workers.port}", timeout_s=10) as client:
            for _ in range(10):
                client.infer("m", np.zeros((1, 4)))
                sent += 1
    assert two_workers.metric('fleetmind_inference_requests_total{model="m",status="OK"}') == sent
    assert two_workers.metric('fleetmind_inference_in_flight{model="m"}') == 0
    assert two_workers.metric('fleetmind_inference_batch_rows_count{model="m"}') == sent

    results: list[object] = []
    errors: list[BaseException] = []

    def slow_call(client: Client) -> None:
        try:
            results.append(client.infer("m", np.ones((64, 4))))
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    clients = [Client(f"127.0.0.1:{two_workers.port}", timeout_s=20) for _ in range(6)]
    try:
        for client in clients:
            client.infer("m", np.zeros((1, 4)))  # connected
        threads = [threading.Thread(target=slow_call, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        time.sleep(0.01)
        two_workers.proc.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=30)
    finally:
        for client in clients:
            client.close()
    assert two_workers.proc.wait(timeout=60) == 0
    assert errors == []
    assert len(results) == 6
    assert "draining 2 workers" in two_workers.text()


def test_a_killed_worker_is_replaced_and_callers_see_no_failure(two_workers: Served) -> None:
    failures: list[BaseException] = []
    answered = [0]
    stop = threading.Event()

    def caller() -> None:
        with Client(f"127.0.0.1:{two_workers.port}", timeout_s=10) as client:
            while not stop.is_set():
                try:
                    client.infer("m", np.zeros((1, 4)))
                    answered[0] += 1
                except BaseException as exc:  # the test reports it
                    failures.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        victim = two_workers.worker_pids()[1]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: "worker 1 (pid" in two_workers.text(), 20, "the parent to notice")
        wait_for(
            lambda: two_workers.worker_pids()[1] != victim and "replaced" in two_workers.text(),
            30,
            "a replacement worker",
        )
        before = answered[0]
        time.sleep(1.0)
        assert answered[0] > before
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    assert _alive(two_workers.worker_pids()[1])
    assert f"worker 1 (pid {victim}) was killed by SIGKILL" in two_workers.text()
    # The dead worker's counts stay on the page; its in-flight gauge is dropped.
    assert (
        two_workers.metric('fleetmind_inference_requests_total{model="m",status="OK"}')
        >= (answered[0])
    )
    assert two_workers.metric('fleetmind_inference_in_flight{model="m"}') == 0


def test_a_new_checkpoint_reaches_every_worker(run_dir: Path) -> None:
    served = _ready(_start(run_dir, "--port", "0", "--workers", "2", "--reload-interval-s", "0.2"))
    try:
        write_toy_checkpoint(run_dir, seed=5, version=2)

        def everywhere() -> bool:
            for _ in range(8):
                with Client(f"127.0.0.1:{served.port}", timeout_s=10) as client:
                    if not client.model_ready("m", "2"):
                        return False
            return True

        wait_for(everywhere, 30, "version 2 on every connection")
    finally:
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=60) == 0


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_share_the_http_port_and_drain_on_sigterm(run_dir: Path) -> None:
    from .http_calls import call, infer_body, post_json

    served = _ready(
        _start(run_dir, "--port", "0", "--http-port", "0", "--workers", "2", "--metrics-port", "0")
    )
    try:
        match = re.search(r"\(http port (\d+)\)", served.text())
        assert match, served.text()
        port = int(match.group(1))
        assert call(port, "GET", "/v2/health/ready")[0] == 200
        for _ in range(12):  # a fresh connection each: the kernel spreads them over workers
            status, reply = post_json(port, "/v2/models/m/infer", infer_body(np.zeros((1, 4))))
            assert status == 200, reply
        with Client(f"127.0.0.1:{served.port}", timeout_s=10) as client:
            client.infer("m", np.zeros((1, 4)))
        assert served.metric('fleetmind_inference_requests_total{model="m",status="OK"}') == 13
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=60) == 0
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()


def _explainers(workers: set[int]) -> dict[int, list[int]]:
    """Each worker's niced children (its explainer process, once started)."""
    return {
        w: [c for c in children(w) if os.getpriority(os.PRIO_PROCESS, c) >= 10] for w in workers
    }


def test_each_worker_explains_in_a_niced_child_of_its_own_stopped_by_sigterm(
    run_dir: Path,
) -> None:
    served = _ready(
        _start(run_dir, "--port", "0", "--workers", "2", loader="explain_loader:loader")
    )
    try:
        workers = set(served.worker_pids().values())
        assert _explainers(workers) == {w: [] for w in workers}  # none before it is asked for
        for _ in range(8):  # a fresh connection each: the kernel spreads them over workers
            with Client(f"127.0.0.1:{served.port}", timeout_s=60) as client:
                explained = client.infer("m", np.ones((2, 4)), explain=True)
                assert explained["attributions"].shape == (2, 4)
        explainers = _explainers(workers)
        assert all(len(found) <= 1 for found in explainers.values()), explainers
        started = [pid for found in explainers.values() for pid in found]
        assert started
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=60) == 0
        for pid in [*workers, *started]:
            wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists(), 10, f"{pid} to exit")
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()
