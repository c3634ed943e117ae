"""The rendered serving fleet on the one-machine cluster: real processes, namespaces, DNS.

The tests share one fleet (starting pods is what costs time) and each leaves it
at two Ready replicas.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.cluster.conftest import CONNECTION_AGE_S, METRICS_PORT, NAME, NAMESPACE, Fleet

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 (ip netns)",
)


@pytest.fixture
def two_replicas(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet at two Ready replicas before and after the test."""
    fleet.cluster.scale(NAME, 2)
    yield fleet
    fleet.cluster.scale(NAME, 2)


def test_every_pod_becomes_ready_through_its_probes(two_replicas: Fleet) -> None:
    from fleetmind.deploy.local_cluster.dns import resolve

    cluster = two_replicas.cluster
    pods = two_replicas.pods()
    assert len(pods) == 2
    for pod in pods:
        (server,) = pod.containers
        assert server.started
        assert server.ready
        assert pod.restarts == 0
        assert server.spec.startup is not None
        assert server.spec.startup.kind == "grpc"
        assert f"serving {NAME} on 0.0.0.0:8001" in pod.log_path.read_text()
    addresses = sorted(p.address for p in pods)
    assert sorted(cluster.endpoints(NAME)) == addresses
    fqdn = f"{NAME}.{NAMESPACE}.svc.cluster.local"
    assert sorted(resolve(fqdn, cluster.network.gateway)) == addresses
    # inside a namespace, the short name resolves through resolv.conf's search list
    lookup = cluster.run_client(
        [sys.executable, "-c",
         f"import socket; print(sorted({{a[4][0] for a in socket.getaddrinfo('{NAME}', 8001)}}))"],
        namespace=NAMESPACE, stdout=subprocess.PIPE,
    )  # fmt: skip
    out, _ = lookup.communicate(timeout=30)
    assert out.decode().strip() == str(addresses)


def test_calls_by_service_name_spread_over_every_replica(two_replicas: Fleet) -> None:
    fleet = two_replicas
    before = fleet.requests()
    with fleet.load(callers=8) as load:
        fleet.cluster.wait_for(
            lambda: sum(fleet.requests().values()) - sum(before.values()) >= 3000, 60, "3000 calls"
        )
        after = fleet.requests()
    summary = load.stop()
    assert summary["failed"] == 0, json.dumps(summary)
    served = {pod: after[pod] - before[pod] for pod in before}
    total = sum(served.values())
    assert len(served) == 2
    for pod, calls in served.items():
        assert calls >= 0.35 * total, f"{pod} answered {calls:.0f} of {total:.0f} calls"


def test_a_rolling_update_and_a_deleted_pod_fail_no_call(two_replicas: Fleet) -> None:
    fleet = two_replicas
    cluster = fleet.cluster
    old = {p.name for p in fleet.pods()}
    seen = _Watch(fleet)
    # a steady 300 calls a second leaves the CPUs to the pods that start meanwhile
    with seen, fleet.load(callers=8, rate=300) as load:
        cluster.rolling_update(NAME, env={"server": {"FLEETMIND_MAX_BATCH_SIZE": "32"}})
        updated = {p.name for p in fleet.pods()}
        victim = next(iter(updated))
        cluster.delete_pod(victim)
        cluster.wait_ready(timeout_s=90)
        fleet.cluster.wait_for(lambda: len(fleet.requests()) == 2, 30, "two pods answering")
    summary = load.stop()
    assert summary["failed"] == 0, json.dumps(summary)
    assert summary["ok"] > 100
    assert not updated & old, "every pod was replaced"
    assert victim not in {p.name for p in fleet.pods()}
    # maxSurge 1, maxUnavailable 0: never more than 3 pods, never fewer than 2 Ready
    # (the deleted pod left the Service before its replacement was Ready)
    assert seen.most_pods <= 3
    assert seen.fewest_ready_in_rollout >= 2


class _Watch:
    """Counts pods and Ready pods while a rollout runs (a check, not a wait)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.most_pods = 0
        self.fewest_ready_in_rollout = 99
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        cluster = self.fleet.cluster
        rolling = True
        while not self._stop.wait(0.02):
            live = self.fleet.pods()
            self.most_pods = max(self.most_pods, len(live))
            if rolling:
                self.fewest_ready_in_rollout = min(
                    self.fewest_ready_in_rollout, sum(p.ready for p in live)
                )
                rolling = not cluster.controller(NAME).settled()

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_third_replica_gets_calls_within_the_connection_age(two_replicas: Fleet) -> None:
    fleet = two_replicas
    cluster = fleet.cluster
    with fleet.load(callers=8, rate=300) as load:
        old = {p.name for p in fleet.pods()}
        cluster.scale(NAME, 3)
        (new,) = [p for p in fleet.pods() if p.name not in old]
        assert new.ready_since is not None
        window = CONNECTION_AGE_S * 1.1 + 1.0  # gRPC's age jitter is 10 %; a resolution
        cluster.wait_for(lambda: fleet.requests().get(new.name, 0) >= 20, window + 5,
                         "calls on the new pod", every_s=0.1)  # fmt: skip
        waited = time.monotonic() - new.ready_since
    summary = load.stop()
    assert summary["failed"] == 0, json.dumps(summary)
    assert waited <= window, f"the new pod got calls {waited:.1f} s after it was Ready"


WINDOW_S = 3.0
"""The window each reading of the metric spans (the adapter's rule averages over a minute)."""
STEP_S = 4.0
"""How long each rate of the load step runs before its last window is read."""
FIRST_RATE = 200.0
RATE_STEP = 1.25
MOST_RATE = 6000.0
ATTEMPTS = 2
"""The machine is shared: an attempt whose replicas another process starved is run again."""


@dataclass
class _Scaling:
    """What one attempt read: the wait per pod (s), CPU per pod (cores), the calls."""

    rate: float = FIRST_RATE
    steps: list[tuple[int, float]] = field(default_factory=list)
    readings: list[dict[str, float]] = field(default_factory=list)
    one: dict[str, float] = field(default_factory=dict)
    two: dict[str, float] = field(default_factory=dict)
    cores: list[dict[str, float]] = field(default_factory=list)
    load_cores: list[float] = field(default_factory=list)
    served: dict[str, float] = field(default_factory=dict)
    arrived: float = 0.0


def test_the_autoscaler_metric_crosses_its_target_with_one_replica_and_not_with_two(
    two_replicas: Fleet,
) -> None:
    """The wait, scraped from each pod's metrics page as Prometheus would and averaged
    over a window as the adapter's rule does, goes above the HPA's target under a load
    step on one replica and under it once two replicas take half the load each.

    The load is open loop (h2load, paced): a closed loop of N callers keeps N calls in
    flight however many replicas answer, so on two shared cores, where a second replica
    adds less than a core, its wait would not halve. The step starts at FIRST_RATE calls
    a second and grows by a quarter until one replica falls behind (what one replica
    answers depends on what else this machine runs); two replicas then take that rate.
    """
    from fleetmind.deploy.local_cluster.autoscaling import desired_replicas, hpa_target
    from fleetmind.serve.metrics import WAIT_METRIC

    fleet = two_replicas
    target = hpa_target(fleet.cluster.manifests, NAME)
    assert (target.kind, target.metric) == ("Pods", WAIT_METRIC)
    for attempt in range(1, ATTEMPTS + 1):
        seen = _Scaling()
        try:
            _step_on_one_then_split(fleet, target.average, seen)
            break
        except TimeoutError:
            if attempt == ATTEMPTS:
                raise
    assert max(seen.one.values()) > target.average * 1.1, seen.one
    assert desired_replicas(2, seen.two, target.average) <= 2, seen.two
    assert seen.arrived >= 0.8 * seen.rate, f"{seen.arrived:.0f} calls/s reached two replicas"
    first, second = seen.served.values()
    share = second / (first + second)
    assert 0.3 <= share <= 0.7, f"the second replica took {share:.0%} of the calls"
    print(json.dumps({
        "target_ms": target.average * 1000, "attempt": attempt, "steps": seen.steps,
        "rate": round(seen.rate),
        "one_ms": [round(v * 1000, 1) for v in seen.one.values()],
        "two_ms": [round(v * 1000, 1) for v in seen.two.values()],
        "one_cores": [round(v, 2) for v in seen.cores[0].values()],
        "two_cores": [round(v, 2) for v in seen.cores[1].values()],
        "load_cores": [round(c, 3) for c in seen.load_cores], "second_share": round(share, 2),
    }))  # fmt: skip


def _step_on_one_then_split(fleet: Fleet, target: float, seen: _Scaling) -> None:
    """Raise a paced load on one replica until the HPA would start a second, then split it
    over two until both read under ``target``; TimeoutError when they do not in 45 s."""
    from fleetmind.deploy.local_cluster.autoscaling import (
        PodSampler,
        cpu_seconds,
        desired_replicas,
        page_metric,
    )
    from fleetmind.serve.metrics import WAIT_METRIC

    fleet.cluster.scale(NAME, 1)
    (first,) = fleet.pods()
    scraped = page_metric(WAIT_METRIC, METRICS_PORT)  # each pod's /metrics, as Prometheus
    with (
        PodSampler(fleet.pods, scraped) as wait,
        PodSampler(fleet.pods, cpu_seconds) as cpu,  # for the record
        ExitStack() as load,
    ):
        while True:
            assert seen.rate <= MOST_RATE, f"one replica kept up: {seen.steps}"
            load.close()
            generators = load.enter_context(fleet.paced_load(seen.rate, [first]))
            time.sleep(STEP_S)
            seen.one = wait.averages(time.monotonic() - WINDOW_S)
            seen.steps.append((round(seen.rate), round(max(seen.one.values(), default=0) * 1e3)))
            if desired_replicas(1, seen.one, target) >= 2:
                break
            seen.rate *= RATE_STEP
        seen.load_cores.append(_cpu_s(generators) / STEP_S)
        seen.cores.append(cpu.rates(time.monotonic() - WINDOW_S))
        fleet.cluster.scale(NAME, 2)
        (second,) = [p for p in fleet.pods() if p.name != first.name]
        load.close()
        generators = load.enter_context(fleet.paced_load(seen.rate, [first, second]))
        before, shared = fleet.requests(), time.monotonic()

        def both_under_target() -> bool:
            now = time.monotonic()
            if now - shared >= WINDOW_S:
                seen.two = wait.averages(now - WINDOW_S, now)
                seen.readings.append(seen.two)
            return len(seen.two) == 2 and max(seen.two.values()) < target

        try:
            fleet.cluster.wait_for(both_under_target, 45, "both under the target", every_s=0.2)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}: {seen.steps}, then {seen.readings[-3:]}") from None
        seen.load_cores.append(_cpu_s(generators) / (time.monotonic() - shared))
        seen.cores.append(cpu.rates(time.monotonic() - WINDOW_S))
        after, ended = fleet.requests(), time.monotonic()
    seen.served = {p: after[p] - before[p] for p in (first.name, second.name)}
    seen.arrived = sum(seen.served.values()) / (ended - shared)


def _cpu_s(processes: list[subprocess.Popen[bytes]]) -> float:
    """CPU time the load generators have used so far (each shell and the runs it waited for)."""
    total = 0
    for process in processes:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")
