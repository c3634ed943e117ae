"""Finding the processes a federated run started, by a mark in their environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[2] / "src"
"""The source tree the child processes import."""


def processes_marked(mark: str) -> list[int]:
    """Processes whose environment carries ``mark`` (ray's and Flower's inherit it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def no_process_left(mark: str, wait_s: float = 30.0) -> bool:
    """True once no process carries ``mark`` (helpers leave soon after their parent)."""
    deadline = time.monotonic() + wait_s
    while processes_marked(mark):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def run_federate(run_dir: Path, *flags: str, timeout: float = 400) -> dict[str, Any]:
    """``fleetmind federate CartPole-v1 FLAGS --run-dir RUN_DIR --json`` in a child process
    (ray and Flower leak warnings into pytest otherwise): its summary, once it exited 0
    and left no process behind."""
    mark = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(SRC), "FLEETMIND_TEST_RUN": mark}
    command = [sys.executable, "-m", "fleetmind", "federate", "CartPole-v1", *flags]
    command += ["--run-dir", str(run_dir), "--json"]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert no_process_left(mark), "processes of the run outlived it"
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def three_site_run(tmp_path: Path, monkeypatch: Any, rounds: int) -> tuple[str, Any]:
    """A mark for this test's processes (in the environment, with PYTHONPATH naming this
    source tree) and the settings of a 3-site CartPole federation of ``rounds`` rounds,
    its run directory ``tmp_path / "run"`` created."""
    from fleetmind.federated.global_run import create_run_dir
    from fleetmind.federated.settings import FederationSettings

    mark = uuid.uuid4().hex
    monkeypatch.setenv("FLEETMIND_TEST_RUN", mark)
    monkeypatch.setenv("PYTHONPATH", str(SRC))
    settings = FederationSettings(
        env_id="CartPole-v1", sites=3, rounds=rounds, local_steps=128, eval_episodes=1,
        run_dir=tmp_path / "run", site_params=[{"length": 0.5}] * 3,
    )  # fmt: skip
    create_run_dir(settings, None, force=False)
    return mark, settings
