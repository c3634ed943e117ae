"""Children started with child_env() never outlive their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from fleetmind.runtime.launch.children import PARENT_PID_ENV, child_env

CHILD = (
    "from fleetmind.runtime.launch.children import die_with_parent; die_with_parent(); "
    "import time; print('ready', flush=True); time.sleep(120)"
)
PARENT = f"""
import subprocess, sys, time
from fleetmind.runtime.launch.children import child_env
child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], env=child_env(),
                         stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead too
        return fh.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_child_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert _alive(child_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        for _ in range(100):
            if not _alive(child_pid):
                break
            time.sleep(0.05)
        assert not _alive(child_pid)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_child_whose_parent_is_already_gone_exits() -> None:
    env = {**child_env(), PARENT_PID_ENV: "1"}  # pid 1 is not our parent
    child = subprocess.run(
        [sys.executable, "-c", CHILD], check=False, env=env, capture_output=True, timeout=60
    )
    if sys.platform.startswith("linux"):
        assert child.returncode == 1
        assert b"ready" not in child.stdout


@pytest.mark.parametrize("value", ["", "not-a-pid", "-5"])
def test_a_malformed_parent_pid_is_ignored(value: str) -> None:
    env = {**child_env(), PARENT_PID_ENV: value}
    code = (
        "from fleetmind.runtime.launch.children import die_with_parent; "
        "die_with_parent(); print('ok')"
    )
    child = subprocess.run(
        [sys.executable, "-c", code], check=False, env=env, capture_output=True, timeout=60
    )
    assert child.returncode == 0
    assert child.stdout.strip() == b"ok"
