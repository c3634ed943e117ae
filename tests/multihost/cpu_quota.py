"""A CPU quota on this process, through the cgroup v1 ``cpu`` controller: a weaker device.

    with cpu_quota(0.25):   # a quarter of one CPU, granted in 20 ms periods
        ...                 # every thread of this process is throttled to it

Processes started before the block (a server under test) keep their CPU. On leaving,
the process goes back to the group it came from and the group is removed. Needs root
and a cgroup v1 ``cpu`` hierarchy at /sys/fs/cgroup/cpu (:func:`cpu_quota_available`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

HIERARCHY = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 20_000
"""A short period: a throttled process waits at most the rest of one period."""


def cpu_quota_available() -> bool:
    """Whether :func:`cpu_quota` can work here (root, cgroup v1's cpu controller)."""
    return (
        os.geteuid() == 0
        and (HIERARCHY / "cgroup.procs").exists()
        and (HIERARCHY / "cpu.cfs_quota_us").exists()
    )


def _own_group() -> Path:
    """This process's group in the cpu hierarchy, from /proc/self/cgroup."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return HIERARCHY / path.lstrip("/")
    return HIERARCHY


@contextlib.contextmanager
def cpu_quota(share: float) -> Iterator[None]:
    """Limit this whole process to ``share`` of one CPU inside the block."""
    if not 0 < share <= 1:
        raise ValueError(f"share={share} must be in (0, 1]")
    home = _own_group()
    group = HIERARCHY / f"fleetmind-test-quota-{os.getpid()}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(int(PERIOD_US * share)))
        (group / "cgroup.procs").write_text(str(os.getpid()))
        try:
            yield
        finally:
            (home / "cgroup.procs").write_text(str(os.getpid()))
    finally:
        group.rmdir()
