"""Helpers for tests that run real fleetmind processes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def fleetmind(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``python -m fleetmind ARGS`` with captured output."""
    return subprocess.Popen(
        [sys.executable, "-m", "fleetmind", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def serve_command(run_dir: Path, loader: str, *extra: str) -> list[str]:
    """``python -m fleetmind serve RUN_DIR`` on loopback, model ``m`` loaded by ``loader``."""
    return [
        sys.executable,
        "-m",
        "fleetmind",
        "serve",
        str(run_dir),
        "--host",
        "127.0.0.1",
        "--loader",
        loader,
        "--model-name",
        "m",
        *extra,
    ]


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``check`` every 0.2 s until true; fail the test naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def latest_version(run_dir: Path) -> int:
    """The policy version of the last report in metrics.jsonl (-1 before any)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return -1
    versions = [-1]
    for line in path.read_text().splitlines():
        try:
            versions.append(int(json.loads(line).get("version", -1)))
        except ValueError:
            continue
    return max(versions)


def ended_interrupted(proc: subprocess.Popen[str], log_path: Path) -> tuple[dict[str, Any], str]:
    """Wait for a signalled training run; check it exited 0 and reported ``interrupted``.

    Returns its summary and its stderr log, for further checks."""
    out, _ = proc.communicate(timeout=120)
    err = log_path.read_text()
    assert proc.returncode == 0, err[-3000:]
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert summary["interrupted"]
    return summary, err


def kill_tree(proc: subprocess.Popen[str]) -> None:
    """Stop a test process and its children if they still run."""
    for pid in children(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


FAST = ("--log-interval-s", "0.3", "--ppo.rollout-steps", "16", "--ppo.update-epochs", "2")
"""Training flags that make a distributed test run update often and cheaply."""
