"""An actor cut off from its learner for 30 s keeps retrying and resumes when the link heals.

A TCP proxy between actor and learner refuses connections and drops the established
ones for 31 s, then listens again on the same port. 42 s in all on a quiet 2-core
machine, 50-58 s on a busy one (process start plus the outage), hence ``slow``.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.integration.procs import fleetmind, kill_tree, wait_for
from tests.integration.tcp_proxy import TcpProxy

FAST = ("--log-interval-s", "0.3", "--ppo.rollout-steps", "16", "--ppo.update-epochs", "1")
OUTAGE_S = 31.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env_steps(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    steps = [0]
    for line in path.read_text().splitlines():
        try:
            steps.append(int(json.loads(line)["env_steps"]))
        except (ValueError, KeyError):
            continue
    return max(steps)


@pytest.mark.slow
def test_actor_survives_a_30_second_outage(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    port = _free_port()
    learner = fleetmind(
        "learner", "CartPole-v1", "--listen", f"127.0.0.1:{port}", "--run-dir", str(run_dir),
        "--steps", "100000000", "--envs", "4", "--actor-timeout-s", "3", *FAST,
    )  # fmt: skip
    proxy = TcpProxy(port).start()
    actor_log = tmp_path / "actor.log"
    with actor_log.open("w") as fh:
        actor = subprocess.Popen(
            [sys.executable, "-m", "fleetmind", "actor", "--learner", f"127.0.0.1:{proxy.port}",
             "--envs", "4", "--actor-id", "cut", "--backoff-initial-s", "0.2",
             "--backoff-max-s", "2", "--rpc-timeout-s", "5"],
            stdout=subprocess.DEVNULL, stderr=fh, text=True,
        )  # fmt: skip
    try:
        wait_for(lambda: _env_steps(run_dir) >= 128, 120, "training through the proxy")
        proxy.cut()
        cut_at = time.monotonic()
        time.sleep(2.0)  # what was in flight lands or fails
        before = _env_steps(run_dir)
        time.sleep(OUTAGE_S - (time.monotonic() - cut_at))
        assert _env_steps(run_dir) == before, "the learner trained on data during the outage"
        assert actor.poll() is None, "the actor gave up during the outage"
        proxy.heal()
        wait_for(lambda: _env_steps(run_dir) >= before + 128, 60, "training after the outage")
    finally:
        kill_tree(actor)
        kill_tree(learner)
        proxy.stop()
    log = actor_log.read_text()
    waits = [float(w) for w in re.findall(r"learner unreachable .*; retrying in ([0-9.]+)s", log)]
    assert len(waits) >= 5, log[-3000:]
    assert max(waits) > 0.2, "the backoff never grew past its first bound"
    assert len(waits) < OUTAGE_S / 0.1, "retries came faster than any backoff allows"
    assert "registering again" in log, log[-3000:]  # the learner dropped the silent session
