"""A learner and two actors in separate network namespaces, one link cut and healed.

Needs root and ``ip netns`` (CI has both); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.procs import latest_version, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.name != "posix" or os.geteuid() != 0 or shutil.which("ip") is None,
        reason="needs root and iproute2 (ip netns)",
    ),
]

LEARNER_NS = "fm-learner"
TOKEN = "netns-token"
"""The learner listens on every interface, so it needs a token (or --insecure)."""
ACTOR_NS = ("fm-actor1", "fm-actor2")
PORT = 50071


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def namespaces() -> Iterator[list[str]]:
    """Learner namespace linked to each actor namespace by its own veth pair and /30."""
    created = []
    for ns in (LEARNER_NS, *ACTOR_NS):  # left over by an interrupted run
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
    try:
        for ns in (LEARNER_NS, *ACTOR_NS):
            ip("netns", "add", ns)
            created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        addresses = []
        for i, ns in enumerate(ACTOR_NS, start=1):
            ip("link", "add", f"fml{i}", "netns", LEARNER_NS, "type", "veth", "peer", "name",
               f"fma{i}", "netns", ns)  # fmt: skip
            ip("-n", LEARNER_NS, "addr", "add", f"10.71.{i}.1/30", "dev", f"fml{i}")
            ip("-n", ns, "addr", "add", f"10.71.{i}.2/30", "dev", f"fma{i}")
            ip("-n", LEARNER_NS, "link", "set", f"fml{i}", "up")
            ip("-n", ns, "link", "set", f"fma{i}", "up")
            addresses.append(f"10.71.{i}.1:{PORT}")
        yield addresses
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def in_ns(ns: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "fleetmind", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_training_survives_a_cut_link(tmp_path: Path, namespaces: list[str]) -> None:
    run_dir = tmp_path / "run"
    learner = in_ns(
        LEARNER_NS, "learner", "CartPole-v1", "--listen", f"0.0.0.0:{PORT}", "--run-dir",
        str(run_dir), "--steps", "30000", "--envs", "8", "--log-interval-s", "0.5",
        "--sync-timeout-s", "3", "--actor-timeout-s", "3", "--token", TOKEN,
    )  # fmt: skip
    actors = [
        in_ns(ns, "actor", "--learner", addr, "--envs", "4", "--actor-id", ns,
              "--backoff-max-s", "1", "--rpc-timeout-s", "5", "--token", TOKEN)
        for ns, addr in zip(ACTOR_NS, namespaces, strict=True)
    ]  # fmt: skip
    try:
        wait_for(lambda: latest_version(run_dir) >= 3, 180, "three updates")
        ip("-n", LEARNER_NS, "link", "set", "fml2", "down")
        cut_at = latest_version(run_dir)
        wait_for(lambda: latest_version(run_dir) >= cut_at + 3, 120, "updates without actor 2")
        time.sleep(2)
        ip("-n", LEARNER_NS, "link", "set", "fml2", "up")
        out, err = learner.communicate(timeout=600)
        assert learner.returncode == 0, err[-3000:]
        assert json.loads(out.strip().splitlines()[-1])["env_steps"] >= 30000
        _, a2_err = actors[1].communicate(timeout=60)
        assert "registering again" in a2_err or "unreachable" in a2_err
        assert err.count("actor fm-actor2 registered") >= 2
    finally:
        for p in [learner, *actors]:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=30)
