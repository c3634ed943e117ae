"""How many CPUs this process may actually use.

``os.cpu_count()`` is the machine's; a process may run on fewer (its CPU affinity,
which ``taskset`` and a container's cpuset set) and may be given less time than
those CPUs offer (a cgroup CPU quota: Kubernetes' ``resources.limits.cpu``). A pod
limited to 2 CPUs on a 16-core node should start 2 busy processes, not 16::

    usable_cpus()        # min(affinity, ceil(quota / period)), at least 1
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def usable_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The CPUs in this process's affinity, capped by its cgroup's CPU quota if any."""
    cpus = len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def cgroup_cpu_quota(
    cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
) -> float | None:
    """CPUs' worth of time the cgroup allows per period (None: no quota, or unknown)."""
    for folder in _cgroup_folders(cgroup_root, proc_cgroup):
        v2 = folder / "cpu.max"  # "max 100000" or "200000 100000"
        if v2.is_file():
            quota, _, period = _read(v2).partition(" ")
            return _ratio(quota, period)
        v1 = folder / "cpu.cfs_quota_us"  # -1: no quota
        if v1.is_file():
            return _ratio(_read(v1), _read(folder / "cpu.cfs_period_us"))
    return None


def _cgroup_folders(root: Path, proc_cgroup: Path) -> list[Path]:
    """Where this process's CPU controller may be: its own cgroup first, then the root
    (inside a container the root is usually the container's own cgroup)."""
    folders: list[Path] = []
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "":  # cgroup v2
            folders.append(root / relative)
        elif "cpu" in controllers.split(","):
            folders += [root / controllers / relative, root / "cpu" / relative]
    folders += [root, root / "cpu", root / "cpu,cpuacct"]
    return folders


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:  # "max", or unreadable
        return None
    return q / p if q > 0 and p > 0 else None
