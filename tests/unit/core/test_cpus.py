"""usable_cpus: the affinity, capped by a cgroup CPU quota (v1 or v2)."""

from __future__ import annotations

import os
from pathlib import Path

from fleetmind.core.cpus import cgroup_cpu_quota, usable_cpus


def _proc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proc-cgroup"
    path.write_text(text)
    return path


def test_cgroup_v2_quota_of_the_process_cgroup(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    (root / "kubepods" / "pod1").mkdir(parents=True)
    (root / "kubepods" / "pod1" / "cpu.max").write_text("150000 100000\n")
    proc = _proc(tmp_path, "0::/kubepods/pod1\n")
    assert cgroup_cpu_quota(root, proc) == 1.5
    assert usable_cpus(root, proc) == min(2, len(os.sched_getaffinity(0)))


def test_no_quota_means_the_affinity(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cpu.max").write_text("max 100000\n")
    proc = _proc(tmp_path, "0::/\n")
    assert cgroup_cpu_quota(root, proc) is None
    assert usable_cpus(root, proc) == len(os.sched_getaffinity(0))
    assert cgroup_cpu_quota(tmp_path / "missing", proc) is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    folder = tmp_path / "cg" / "cpu,cpuacct" / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "cpu.cfs_quota_us").write_text("50000\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    proc = _proc(tmp_path, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    assert cgroup_cpu_quota(tmp_path / "cg", proc) == 0.5
    assert usable_cpus(tmp_path / "cg", proc) == 1  # never 0
    (folder / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path / "cg", proc) is None
