"""A served fleet, rendered by ``fleetmind deploy serve`` and run on the one-machine cluster.

Root and iproute2 only (the cluster makes network namespaces); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleetmind.serve.testing import write_toy_checkpoint

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 (ip netns)",
)

NAME = "cartpole"
NAMESPACE = "agents"
TOKEN = "cluster-token"
CONNECTION_AGE_S = 3.0
"""The servers' --max-connection-age-s here (the manifests say 30): clients re-resolve
the Service this often, which keeps the tests short."""
GRPC_PORT = 8001
METRICS_PORT = 8002
TARGET = f"dns:///{NAME}.{NAMESPACE}.svc.cluster.local:{GRPC_PORT}"
PACED_CONNECTIONS = 2
"""h2load connections per pod of a paced load."""
PACED_STREAMS = 128
"""Calls in flight per connection at most: far more than a replica answers in the
time a call may wait, so that an overloaded replica's backlog is the server's."""


@dataclass
class Load:
    """A load client process in its own namespace; ``summary`` once it stopped."""

    process: subprocess.Popen[bytes]
    summary: dict[str, Any] | None = None

    def stop(self) -> dict[str, Any]:
        if self.summary is None:
            self.process.send_signal(signal.SIGTERM)
            out, _ = self.process.communicate(timeout=60)
            self.summary = json.loads(out.decode().strip().splitlines()[-1])
        return self.summary


class Fleet:
    """The cluster running the rendered fleet, and what the tests do with it."""

    def __init__(self, cluster: Any, work: Path) -> None:
        self.cluster = cluster
        self.token_file = work / "client-token"
        self.token_file.write_text(TOKEN + "\n")

    def pods(self) -> list[Any]:
        return [p for p in self.cluster.pods(NAME) if not p.terminating]

    def requests(self) -> dict[str, float]:
        """ModelInfer calls each Ready pod has answered (its metrics page)."""
        from fleetmind.deploy.local_cluster.autoscaling import metric_sum, scrape

        counts = {}
        for pod in self.pods():
            if pod.ready:
                page = scrape(pod.address, METRICS_PORT)
                counts[pod.name] = metric_sum(page, "fleetmind_inference_requests_total")
        return counts

    @contextmanager
    def load(self, callers: int, rate: float | None = None) -> Iterator[Load]:
        """Calls through the SDK by Service name, from a client namespace, until the end
        (``rate``: calls a second in all; unset: back to back)."""
        paced = ["--rate", str(rate)] if rate else []
        process = self.cluster.run_client(
            [sys.executable, "-m", "fleetmind.deploy.local_cluster.load", TARGET,
             "--model", NAME, "--callers", str(callers), "--token-file", str(self.token_file),
             *paced],
            namespace=NAMESPACE, stdout=subprocess.PIPE,
        )  # fmt: skip
        load = Load(process)
        try:
            ready, _, _ = select.select([process.stdout], [], [], 60)
            assert ready, "the load client made no successful call within 60 s"
            assert json.loads(process.stdout.readline()) == {"started": True}
            yield load
        finally:
            load.stop()

    @contextmanager
    def paced_load(self, rate: float, pods: list[Any]) -> Iterator[list[subprocess.Popen[bytes]]]:
        """``rate`` calls a second in all, split evenly over ``pods`` as a round-robin client
        splits them over a Service's endpoints, from h2load (nghttp2's C HTTP/2 client) in
        a client namespace: one shell per pod, whatever the pods answer (open loop), at
        a few hundredths of a core (the SDK in Python costs about a replica's CPU per call).

        h2load does not reconnect after a server's GOAWAY, which the servers here send
        every CONNECTION_AGE_S, so each shell runs it for runs shorter than that, one
        after another (new connections, as a client's after a GOAWAY)."""
        if shutil.which("h2load") is None:
            pytest.skip("h2load (nghttp2-client) is not installed")
        per_connection = rate / len(pods) / PACED_CONNECTIONS
        run_ms = int((CONNECTION_AGE_S * 0.9 - 0.5) * 1000)  # gRPC's age jitter is 10 %
        h2load = (
            "h2load -H 'content-type: application/grpc' -H 'te: trailers' "
            f"-H 'authorization: Bearer {TOKEN}' -H 'grpc-timeout: 10S' "
            f"-d {self._request_body()} -c {PACED_CONNECTIONS} -m {PACED_STREAMS} "
            f"--rps {per_connection:.3f} -D {run_ms}ms"
        )
        method = "inference.GRPCInferenceService/ModelInfer"
        urls = [f"http://{pod.address}:{GRPC_PORT}/{method}" for pod in pods]
        loops = [f"while :; do {h2load} {url}; done" for url in urls]
        processes = [
            self.cluster.run_client(
                ["sh", "-c", loop],
                namespace=NAMESPACE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for loop in loops
        ]
        try:
            yield processes
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def _request_body(self) -> Path:
        """One ModelInfer call of the toy model, framed as gRPC sends it."""
        from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb

        body = self.token_file.parent / "infer.grpc"
        if not body.exists():
            request = pb.ModelInferRequest(model_name=NAME)
            request.inputs.add(name="observation", datatype="FP32", shape=[1, 4])
            request.raw_input_contents.append(bytes(16))
            message = request.SerializeToString()
            body.write_bytes(b"\0" + struct.pack(">I", len(message)) + message)
        return body


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Two replicas of a toy model, autoscaled between 2 and 3, behind a token."""
    from fleetmind.deploy.local_cluster import LocalCluster

    work = tmp_path_factory.mktemp("cluster")
    run = work / "runs" / NAME
    write_toy_checkpoint(run, seed=1)
    out = work / "k8s"
    rendered = subprocess.run(
        [sys.executable, "-m", "fleetmind", "deploy", "serve", str(run), "--name", NAME,
         "--namespace", NAMESPACE, "--min-replicas", "2", "--max-replicas", "3",
         "--token-secret", f"{NAME}-tokens", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    # `fleetmind deploy serve` has no --loader: the toy checkpoint needs the test loader
    server_env = {
        "FLEETMIND_LOADER": "fleetmind.serve.testing:toy_loader",
        "FLEETMIND_MAX_CONNECTION_AGE_S": f"{CONNECTION_AGE_S:g}",
    }
    cluster = LocalCluster(
        out,
        work / "cluster",
        claims={f"{NAME}-models": run},
        secrets={f"{NAME}-tokens": {"tokens": TOKEN + "\n"}},
        env={NAME: server_env},
        restart_backoff_s=1.0,
    )
    started = time.monotonic()
    with cluster:
        cluster.wait_ready(timeout_s=90)
        cluster.started_in_s = time.monotonic() - started  # type: ignore[attr-defined]
        yield Fleet(cluster, work)
