"""The rendered training fleet on the one-machine cluster: a learner StatefulSet on a
volume (a folder), actor Deployments, a token Secret, real processes and DNS.

``fleetmind deploy train CartPole-v1`` with short checkpoint and report intervals.
The run to the target goes to CartPole's own 475: PPO gets there in 50k to 180k steps,
which two actors make at a few thousand steps a second (about a minute on the shared
2-core machine, pods' start included). The group of two learners is marked ``slow``
(40 s more): it keeps the default run of these tests under two minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 (ip netns)",
)

NAME = "cartpole-v1-ppo"
LEARNERS = f"{NAME}-learner"
TOKEN = "train-token"
CHECKPOINT_INTERVAL_S = 2.0
RESUMED = re.compile(r"resuming run \S+ \(.*\) from checkpoint at step (\d+)")


@dataclass
class TrainFleet:
    """The cluster running the rendered fleet, and the learners' volumes (folders)."""

    cluster: Any
    volumes: list[Path]

    @property
    def run(self) -> Path:
        """The run directory: learner 0's volume, at /data/run in its pod."""
        return self.volumes[0] / "run"

    def metrics(self) -> list[dict[str, Any]]:
        """The reports of ``metrics.jsonl`` so far (a line being written is left out)."""
        path = self.run / "metrics.jsonl"
        if not path.is_file():
            return []
        lines = path.read_text().splitlines()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return out

    def last(self, key: str, default: float = 0) -> float:
        reports = self.metrics()
        return float(reports[-1][key]) if reports else default

    def checkpoints(self) -> list[Path]:
        folder = self.run / "checkpoints"
        return sorted(folder.glob("ckpt-*.pt")) if folder.is_dir() else []

    def learner(self, rank: int) -> Any | None:
        """The live (not terminating) pod of learner ``rank``, if there is one."""
        pods = [p for p in self.cluster.pods(LEARNERS) if not p.terminating]
        return next((p for p in pods if p.name == f"{LEARNERS}-{rank}"), None)

    def ready(self, rank: int) -> bool:
        pod = self.learner(rank)
        return pod is not None and bool(pod.ready)

    def log(self, rank: int) -> str:
        """Learner ``rank``'s log (its live pod's, every restart of its container)."""
        pod = self.learner(rank)
        return "" if pod is None else str(pod.log_path.read_text(errors="replace"))

    def wait_for_steps(self, steps: float, timeout_s: float) -> None:
        self.cluster.wait_for(
            lambda: self.last("env_steps") >= steps, timeout_s, f"{steps:g} env steps reported"
        )


def _render(out: Path, *flags: str) -> None:
    rendered = subprocess.run(
        [sys.executable, "-m", "fleetmind", "deploy", "train", "CartPole-v1",
         "--token-secret", f"{NAME}-tokens",
         "--checkpoint-interval-s", f"{CHECKPOINT_INTERVAL_S:g}", "--log-interval-s", "1",
         "--actor-timeout-s", "5", "--out", str(out), *flags],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr


@pytest.fixture
def start_fleet(tmp_path: Path) -> Iterator[Callable[..., TrainFleet]]:
    """``start_fleet(*flags)``: render ``fleetmind deploy train`` with ``flags``, run it,
    wait until every learner is Ready; the cluster closes when the test ends."""
    from fleetmind.deploy.local_cluster import LocalCluster

    with contextlib.ExitStack() as stack:

        def start(*flags: str) -> TrainFleet:
            learners = int(flags[flags.index("--learners") + 1]) if "--learners" in flags else 1
            out = tmp_path / "k8s"
            _render(out, *flags)
            volumes = [tmp_path / f"volume-{rank}" for rank in range(learners)]
            for volume in volumes:
                volume.mkdir()
            cluster = LocalCluster(
                out,
                tmp_path / "cluster",
                claims={f"data-{LEARNERS}-{rank}": v for rank, v in enumerate(volumes)},
                secrets={f"{NAME}-tokens": {"tokens": TOKEN + "\n"}},
                restart_backoff_s=1.0,
            )
            stack.enter_context(cluster)
            cluster.wait_ready(timeout_s=120)
            return TrainFleet(cluster, volumes)

        yield start


def test_a_learner_killed_mid_run_resumes_from_its_checkpoint_and_the_run_finishes(
    start_fleet: Callable[..., TrainFleet],
) -> None:
    fleet = start_fleet("--actors", "2", "--target-return", "475")
    cluster = fleet.cluster
    cluster.wait_for(lambda: fleet.last("actors_live") == 2, 60, "2 live actors reported")
    cluster.wait_for(lambda: len(fleet.checkpoints()) >= 2, 60, "a second checkpoint")
    before = fleet.metrics()
    cluster.delete_pod(f"{LEARNERS}-0", grace_s=0)  # SIGKILL at once: no final checkpoint
    cluster.wait_for(lambda: fleet.ready(0), 120, "the new learner pod Ready")
    log = fleet.log(0)
    resumed = RESUMED.search(log)
    assert resumed, log
    step = int(resumed[1])
    # steps redone: at most one checkpoint interval's worth. A checkpoint follows the
    # first update that ends an interval after the last one (updates take well under a
    # second here), so it is no older than any report made a second more before the kill
    last = before[-1]
    older = [
        r for r in before if r["wall_time_s"] <= last["wall_time_s"] - CHECKPOINT_INTERVAL_S - 1
    ]
    floor = older[-1]["env_steps"] if older else 0
    assert step >= floor, (step, before)  # (it may be newer than the last report)

    # the actors register with the new learner and the run goes on to its target
    cluster.wait_for(lambda: fleet.log(0).count(" registered (session") >= 2, 60,
                     "both actors registered with the new learner")  # fmt: skip
    fleet.wait_for_steps(last["env_steps"] + 1, 60)
    cluster.wait_for((fleet.run / "summary.json").is_file, 240, "the run to reach its target")
    summary = json.loads((fleet.run / "summary.json").read_text())
    assert summary["solved_at_env_steps"] is not None, summary
    assert summary["episode_return_mean"] >= 475, summary
    reports = fleet.metrics()
    steps = [r["env_steps"] for r in reports]
    assert steps == sorted(steps), "metrics.jsonl went back in steps"
    assert any(r["env_steps"] > last["env_steps"] for r in reports)


def test_scaling_the_actors_mid_run_raises_the_live_actors_the_learner_reports(
    start_fleet: Callable[..., TrainFleet],
) -> None:
    # no target: the run (500k steps) outlasts the test, and the cluster stops it
    fleet = start_fleet("--actors", "2")
    cluster = fleet.cluster
    cluster.wait_for(lambda: fleet.last("actors_live") == 2, 60, "2 live actors reported")
    cluster.scale(f"{NAME}-actors-0", 4)
    cluster.wait_for(lambda: fleet.last("actors_live") == 4, 60, "4 live actors reported")
    assert len(cluster.pods(f"{NAME}-actors-0")) == 4


@pytest.mark.slow
def test_a_group_that_loses_a_learner_stops_and_resumes_when_the_pod_is_recreated(
    start_fleet: Callable[..., TrainFleet],
) -> None:
    # RANK comes from the pod-index label; only learner 0's volume holds the run
    fleet = start_fleet("--actors", "2", "--learners", "2")
    cluster = fleet.cluster
    cluster.wait_for(lambda: len(fleet.checkpoints()) >= 2, 90, "a second checkpoint")
    assert "learner 1 of 2 joins" in fleet.log(1), fleet.log(1)
    zero = fleet.learner(0)
    before = fleet.metrics()[-1]

    cluster.delete_pod(f"{LEARNERS}-1", grace_s=0)
    # the group stops cleanly: learner 0 saves its last complete update and exits 2
    cluster.wait_for(lambda: zero.restarts >= 1, 60, "learner 0 to stop and restart")
    assert zero.containers[0].last_exit_code == 2
    log = zero.log_path.read_text()
    assert "learner group broken: final checkpoint at version" in log, log
    assert "learner group lost a member" in log, log

    # the recreated learner 1 and the restarted learner 0 meet again, by themselves,
    # and go on from learner 0's checkpoint
    cluster.wait_for(lambda: fleet.ready(0) and fleet.ready(1), 180, "both learners Ready")
    resumed = RESUMED.search(zero.log_path.read_text())
    assert resumed, zero.log_path.read_text()
    step = int(resumed[1])
    assert step >= before["env_steps"]  # the final checkpoint: nothing redone
    assert f"learner 1 starts from learner 0's checkpoint at step {step}" in fleet.log(1)
    fleet.wait_for_steps(step + 1, 90)
    assert not (fleet.volumes[1] / "run" / "config.json").exists()  # rank 0 owns the run
