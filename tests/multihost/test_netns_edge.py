"""The edge client against ``fleetmind serve`` in another namespace, across a partition.

The server runs in its own network namespace behind a veth link that drops every
packet for 10 s (:class:`.shaped_link.ShapedLink`). The edge is the weaker device: a
wide model (real compute, milliseconds a decision) on a quarter of one CPU (a cgroup
quota on the test process while it decides, :mod:`.cpu_quota`), the server a small
model on an unthrottled CPU, so remote is faster while the link is up on any machine.
Needs root, ``ip``, ``iptables`` and cgroup v1's cpu controller; skipped otherwise.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pytest
from tests.integration.procs import wait_for

from fleetmind.serve import Client
from fleetmind.serve.offloading import EdgeConfig, OffloadingClient
from fleetmind.serve.testing import toy_agent, write_toy_checkpoint

from .cpu_quota import cpu_quota, cpu_quota_available
from .shaped_link import ShapedLink, link_tools_available

pytestmark = pytest.mark.skipif(
    not (link_tools_available() and cpu_quota_available()),
    reason="needs root, ip, iptables and cgroup v1's cpu controller",
)
EDGE_CPU = 0.25
"""The edge's share of one CPU while it decides."""

NS = "fm-edge-srv"
PORT = 50081
TOKEN = "edge-token"
LOADER = "fleetmind.serve.testing:toy_loader"
SERVED_SEED = 9
PARTITION_S = 10.0
DEADLINE_S = 0.1


def serve_in(link: ShapedLink, run_dir: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    token_file = run_dir.parent / "token"
    token_file.write_text(TOKEN + "\n")
    command = [sys.executable, "-m", "fleetmind", "serve", str(run_dir), "--host",
               link.remote_ip, "--port", str(PORT), "--loader", LOADER, "--model-name", "m",
               "--token-file", str(token_file)]  # fmt: skip
    return subprocess.Popen(link.inside(command), stdout=log, stderr=log)


def connect(target: str) -> Client:
    return Client(target, token=TOKEN, max_attempts=1, own_connections=True)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ShapedLink, str]]:
    write_toy_checkpoint(tmp_path / "served", seed=SERVED_SEED)
    with ShapedLink(NS) as link, (tmp_path / "serve.log").open("wb") as log:
        server = serve_in(link, tmp_path / "served", log)
        target = f"{link.remote_ip}:{PORT}"
        try:
            with connect(target) as probe:

                def ready() -> bool:
                    try:
                        return probe.server_ready()
                    except Exception:
                        return False

                wait_for(ready, 60, "the server in its namespace")
            yield link, target
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    # an edge device's one core: the quota is not shared out among torch's threads
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_partition_fails_no_decision_and_remote_returns_soon_after(
    tmp_path: Path, served: tuple[ShapedLink, str]
) -> None:
    link, target = served
    write_toy_checkpoint(tmp_path / "edge", seed=3, hidden=4096)  # 16.8M multiply-adds
    rng = np.random.default_rng(0)
    log: list[tuple[float, str, np.ndarray, np.ndarray, float]] = []
    config = EdgeConfig(deadline_s=DEADLINE_S)
    with (
        cpu_quota(EDGE_CPU),
        OffloadingClient.connect(
            tmp_path / "edge", [target], "m", config, loader=LOADER, client=connect
        ) as client,
    ):

        def decide_for(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                obs = rng.normal(size=4).astype(np.float32)
                decision = client.decide(obs)  # raises on a failed decision
                log.append((time.monotonic(), decision.place, obs, decision.action,
                            decision.latency_s))  # fmt: skip

        decide_for(2.0)
        cut_at = time.monotonic()
        link.cut()
        decide_for(PARTITION_S)
        link.heal()
        healed_at = time.monotonic()
        decide_for(3.0)
    before = [entry for entry in log if entry[0] < cut_at]
    during = [entry for entry in log if cut_at <= entry[0] < healed_at]
    after = [entry for entry in log if entry[0] >= healed_at]
    local_ms = [round(e[4] * 1000, 1) for e in before if e[1] == "local"][:20]
    assert sum(e[1] == target for e in before) > len(before) / 2, (
        f"remote was not the faster: {len(before)} decisions, local ones took {local_ms} ms"
    )
    assert len(during) > 100
    assert all(e[1] == "local" for e in during[5:])  # after the first timeouts: local
    back = next(e[0] for e in after if e[1] == target)
    assert back - healed_at <= 2.0
    latencies = [e[4] for e in during]
    assert max(latencies) <= DEADLINE_S * 1.5  # the fallbacks came within the deadline
    remote = [e for e in log if e[1] == target]
    expected = toy_agent(seed=SERVED_SEED).decide_batch(np.stack([e[2] for e in remote]))
    np.testing.assert_array_equal([e[3] for e in remote], expected.actions)
