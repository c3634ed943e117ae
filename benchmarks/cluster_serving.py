"""A served fleet on the one-machine cluster: calls/s by replicas, their spread, start and stop.

What it measures, on the fleet that ``fleetmind deploy serve`` renders (a toy
checkpoint, fleetmind.serve.testing, autoscaled between 1 and 3 replicas, behind a
token) run by :class:`fleetmind.deploy.local_cluster.LocalCluster` (root and
iproute2: network namespaces, DNS, probes, as docs/deploy.md "A cluster on one
machine" describes):

* **calls/s with 1, 2 and 3 replicas**: ``--clients`` processes of
  ``python -m fleetmind.deploy.local_cluster.load``, each in a client namespace of
  its own, call ``ModelInfer`` through the SDK by the Service's name
  (``dns:///cartpole.agents.svc.cluster.local:8001``), back to back with
  ``--callers`` calls in flight in all. After a warm-up of ``--warmup`` seconds
  (longer than the servers' connection age, ``--connection-age``, plus its 10 %
  jitter and a DNS answer: every client has re-resolved the name since the last
  scale and knows every replica), a window of ``--seconds``: the calls each pod
  answered with status OK in it (``fleetmind_inference_requests_total`` on its
  metrics page, read before and after) give calls/s and each replica's share; the
  spread is the most calls one replica answered over the fewest (1.0 is even;
  the issue asks for at most 1.2). Every load client must report zero failed
  calls over its whole run and no pod may count a call that did not end OK, or the
  run stops (SystemExit). The CPU time of the pods, of the load clients and of
  everything else on the machine (the cluster's threads, other work) over the
  window, in cores (from ``/proc``), says who had the CPUs.
* **start to Ready**: each scale-up (1 to 2 and 2 to 3, no load) gives the time
  from the new pod's creation (its network namespace made, its container about to
  start) to its readiness probe passing (``Pod.created_at`` to ``Pod.ready_since``),
  and, from the outside, from ``cluster.scale`` to the Deployment settled.
  The rendered probes look every 2 s, which makes the figure a multiple of about
  2 s plus the probe's own time.
* **SIGTERM to exit under load**: with 3 replicas under the same load (new load
  clients, after the warm-up), a pod is deleted (``cluster.delete_pod``: out of
  the Service at once, SIGTERM, the server turns NOT_SERVING, lets its in-flight
  calls finish and exits); the time from the delete until no process of the pod's
  container is left. The replacement's start to Ready under that load is kept
  apart. The load runs on for another warm-up, then the calls the clients saw
  fail are reported (the SDK retries ``UNAVAILABLE`` and ``CANCELLED`` on another
  replica, within its retry budget); any failed call makes the run end with an
  error, after the table.

Each of ``--rounds`` rounds does all of this once (1, 2, 3 replicas, the delete);
the table gives medians and ranges over the rounds, and the ratios of the median
calls/s with 2 and 3 replicas to 1.

What this machine is: every pod, the load clients and the cluster's own threads
share its CPUs (2 here, and shared with other work), so replicas compete for the
same cores: more replicas cannot add much throughput, and what the ratios show is
how many cores were free, not how the fleet scales. One Python load client can
take up to about a core by itself, so ``--clients`` splits the callers over
processes; the core columns say whether the pods, the clients or the rest of the
machine held the CPUs in each window. The point here is that calls spread evenly
over the replicas by the Service's name, that nothing fails while pods come and
go, and how long starting and stopping take. A real cluster adds what makes the
ratios meaningful: a node (or at least a CPU request's worth of cores) per
replica, clients on other machines, kube-proxy or a mesh in the path, and image
pulls and scheduling before a pod starts (start to Ready here begins at the
container's process).

    sudo PYTHONPATH=src .venv/bin/python benchmarks/cluster_serving.py \
        [--rounds 3] [--seconds 6] [--warmup 4.5] [--clients 2] [--callers 32] \
        [--connection-age 3] [--json cluster.json]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from fleetmind.core.errors import ConfigError
from fleetmind.deploy.local_cluster import LocalCluster
from fleetmind.deploy.local_cluster.autoscaling import cpu_seconds, process_stats, scrape
from fleetmind.deploy.local_cluster.pod import Pod
from fleetmind.serve.testing import write_toy_checkpoint

NAME = "cartpole"
NAMESPACE = "agents"
TOKEN = "bench-token"
GRPC_PORT = 8001
METRICS_PORT = 8002
TARGET = f"dns:///{NAME}.{NAMESPACE}.svc.cluster.local:{GRPC_PORT}"
REPLICAS = (1, 2, 3)
SPREAD_LIMIT = 1.2
"""Most calls on one replica over the fewest, at most (the issue's bar)."""


# -- the fleet -----------------------------------------------------------------


def render(work: Path) -> tuple[Path, Path]:
    """A toy checkpoint and the kustomization ``fleetmind deploy serve`` renders for it."""
    run_dir = work / "runs" / NAME
    write_toy_checkpoint(run_dir, seed=1)
    out = work / "k8s"
    done = subprocess.run(
        [sys.executable, "-m", "fleetmind", "deploy", "serve", str(run_dir), "--name", NAME,
         "--namespace", NAMESPACE, "--min-replicas", "1", "--max-replicas", str(max(REPLICAS)),
         "--token-secret", f"{NAME}-tokens", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"fleetmind deploy serve failed ({done.returncode}):\n{done.stderr}")
    return run_dir, out


def make_cluster(work: Path, args: argparse.Namespace) -> LocalCluster:
    run_dir, out = render(work)
    # `fleetmind deploy serve` has no --loader: the toy checkpoint needs the test loader
    server_env = {
        "FLEETMIND_LOADER": "fleetmind.serve.testing:toy_loader",
        "FLEETMIND_MAX_CONNECTION_AGE_S": f"{args.connection_age:g}",
    }
    return LocalCluster(
        out,
        work / "cluster",
        claims={f"{NAME}-models": run_dir},
        secrets={f"{NAME}-tokens": {"tokens": TOKEN + "\n"}},
        env={NAME: server_env},
        restart_backoff_s=1.0,
    )


def live_pods(cluster: LocalCluster) -> list[Pod]:
    return [p for p in cluster.pods(NAME) if not p.terminating]


def calls_by_status(pod: Pod) -> dict[str, float]:
    """ModelInfer calls the pod has answered so far, by status (its metrics page)."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(scrape(pod.address, METRICS_PORT)):
        for sample in family.samples:
            if sample.name == "fleetmind_inference_requests_total":
                status = sample.labels.get("status", "")
                counts[status] = counts.get(status, 0.0) + sample.value
    return counts


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all of this machine's cores have spent busy so far (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def session_alive(session: int) -> bool:
    """Whether any process of session ``session`` (a container's processes) is left."""
    return any(int(f[3]) == session and f[0] != "Z" for f in process_stats())


# -- load ----------------------------------------------------------------------


class LoadClients:
    """``count`` load client processes, ``callers`` calls in flight in all."""

    def __init__(self, cluster: LocalCluster, token_file: Path, count: int, callers: int):
        self.processes: list[subprocess.Popen[bytes]] = []
        shares = [callers // count + (i < callers % count) for i in range(count)]
        for share in shares:
            self.processes.append(cluster.run_client(
                [sys.executable, "-m", "fleetmind.deploy.local_cluster.load", TARGET,
                 "--model", NAME, "--callers", str(share), "--token-file", str(token_file)],
                namespace=NAMESPACE, stdout=subprocess.PIPE,
            ))  # fmt: skip
        self.summaries: list[dict[str, Any]] = []

    def wait_started(self, timeout_s: float = 60.0) -> None:
        for process in self.processes:
            out = process.stdout
            ready = out is not None and select.select([out], [], [], timeout_s)[0]
            line = out.readline() if out is not None and ready else b""
            if not line or json.loads(line) != {"started": True}:
                raise SystemExit(f"a load client made no successful call within {timeout_s:g} s")

    def cpu_seconds(self) -> float:
        return sum(proc_cpu_seconds(p.pid) for p in self.processes)

    def stop(self) -> dict[str, Any]:
        """Stop every client (once); their summaries added up, with a few errors."""
        if not self.summaries:
            for process in self.processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in self.processes:
                out, _ = process.communicate(timeout=60)
                lines = out.decode().strip().splitlines() if out else []
                if not lines:
                    raise SystemExit(
                        f"a load client ended ({process.returncode}) without a summary"
                    )
                self.summaries.append(json.loads(lines[-1]))
        total: dict[str, Any] = {
            k: sum(s[k] for s in self.summaries) for k in ("calls", "ok", "failed")
        }
        total["errors"] = [e for s in self.summaries for e in s["errors"]][:3]
        return total


def require_no_failure(total: dict[str, Any], what: str) -> None:
    if total["failed"]:
        raise SystemExit(f"{what}: the load clients saw failed calls: {total}")


@contextmanager
def load(
    cluster: LocalCluster, token_file: Path, args: argparse.Namespace
) -> Iterator[LoadClients]:
    clients = LoadClients(cluster, token_file, args.clients, args.callers)
    try:
        clients.wait_started()
        yield clients
    finally:
        clients.stop()


# -- one round -----------------------------------------------------------------


def scale_up(cluster: LocalCluster, replicas: int) -> list[dict[str, float]]:
    """Scale to ``replicas``; start-to-Ready of each new pod (none when scaling down)."""
    before = {p.name for p in live_pods(cluster)}
    asked = time.monotonic()
    cluster.scale(NAME, replicas)
    settled = time.monotonic() - asked
    return [
        {"pod_s": p.ready_since - p.created_at, "scale_s": settled}
        for p in live_pods(cluster)
        if p.name not in before and p.ready_since is not None
    ]


def window(cluster: LocalCluster, clients: LoadClients, args: argparse.Namespace) -> dict[str, Any]:
    """Calls each pod answered, and CPU use, over ``--seconds`` of the running load."""
    pods = live_pods(cluster)
    before = {p.name: calls_by_status(p) for p in pods}
    cpu0, client0 = sum(map(cpu_seconds, pods)), clients.cpu_seconds()
    busy0, t0 = machine_busy_seconds(), time.monotonic()
    time.sleep(args.seconds)
    after = {p.name: calls_by_status(p) for p in pods}
    elapsed = time.monotonic() - t0
    pod_cores = (sum(map(cpu_seconds, pods)) - cpu0) / elapsed
    client_cores = (clients.cpu_seconds() - client0) / elapsed
    machine_cores = (machine_busy_seconds() - busy0) / elapsed
    served, not_ok = {}, 0.0
    for name, now in after.items():
        grew = {s: n - before[name].get(s, 0.0) for s, n in now.items()}
        served[name] = grew.pop("OK", 0.0)
        not_ok += sum(grew.values())
    if not_ok:
        raise SystemExit(f"the pods answered {not_ok:.0f} calls with a status other than OK")
    total = sum(served.values())
    return {
        "calls_s": total / elapsed,
        "per_replica": served,
        "shares": {k: v / total for k, v in served.items()} if total else {},
        "spread": max(served.values()) / min(served.values()) if min(served.values()) else None,
        "pod_cores": pod_cores,
        "client_cores": client_cores,
        "other_cores": machine_cores - pod_cores - client_cores,
    }


def sigterm_under_load(cluster: LocalCluster) -> dict[str, Any]:
    """Delete a pod under load: SIGTERM to no process left, and its replacement's start."""
    before = {p.name for p in live_pods(cluster)}
    victim = live_pods(cluster)[0]
    (container,) = victim.containers
    if container.process is None:
        raise SystemExit(f"{victim.name} has no process")
    session = container.process.pid
    deleted = time.monotonic()
    cluster.delete_pod(victim.name, wait=False)
    while session_alive(session):
        time.sleep(0.005)
    exit_s = time.monotonic() - deleted
    cluster.wait_ready(timeout_s=120)
    (new,) = [p for p in live_pods(cluster) if p.name not in before]
    if new.ready_since is None:
        raise SystemExit(f"{new.name} is not Ready after the cluster settled")
    return {"exit_s": exit_s, "replacement_ready_s": new.ready_since - new.created_at}


def one_round(
    cluster: LocalCluster, token_file: Path, args: argparse.Namespace, number: int
) -> dict[str, Any]:
    starts: list[dict[str, float]] = []
    points: dict[int, dict[str, Any]] = {}
    for replicas in REPLICAS:
        starts += scale_up(cluster, replicas)
        with load(cluster, token_file, args) as clients:
            time.sleep(args.warmup)
            points[replicas] = window(cluster, clients, args)
        points[replicas]["load"] = clients.stop()
        require_no_failure(points[replicas]["load"], f"{replicas} replica(s)")
        print(f"round {number} {describe(replicas, points[replicas])}", flush=True)
    with load(cluster, token_file, args) as clients:
        time.sleep(args.warmup)
        stop = sigterm_under_load(cluster)
        time.sleep(args.warmup)  # the clients find the replacement
    stop["load"] = clients.stop()
    print(f"round {number} start to Ready {[round(s['pod_s'], 2) for s in starts]} s; "
          f"a pod deleted under load: SIGTERM to exit {stop['exit_s']:.2f} s, replacement "
          f"Ready in {stop['replacement_ready_s']:.2f} s, {stop['load']['ok']} calls ok, "
          f"{stop['load']['failed']} failed {stop['load']['errors'][:1]}", flush=True)  # fmt: skip
    return {"points": points, "starts": starts, "stop": stop}


def describe(replicas: int, point: dict[str, Any]) -> str:
    shares = " ".join(f"{s:.0%}" for s in sorted(point["shares"].values()))
    spread = "-" if point["spread"] is None else f"{point['spread']:.2f}"
    return (
        f"{replicas} replica(s): {point['calls_s']:7.0f} calls/s  shares {shares}  "
        f"spread {spread}  cores: pods {point['pod_cores']:.2f} clients "
        f"{point['client_cores']:.2f} rest {point['other_cores']:.2f}  "
        f"[load: {point['load']['ok']} ok, {point['load']['failed']} failed]"
    )


# -- the report ----------------------------------------------------------------


def med_range(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    by_replicas = {}
    for replicas in REPLICAS:
        points = [r["points"][replicas] for r in rounds]
        by_replicas[replicas] = {
            key: [p[key] for p in points]
            for key in ("calls_s", "spread", "pod_cores", "client_cores", "other_cores")
        }
    one = statistics.median(by_replicas[1]["calls_s"])
    ratios = {n: statistics.median(by_replicas[n]["calls_s"]) / one for n in REPLICAS[1:]}
    return {
        "by_replicas": by_replicas,
        "ratios": ratios,
        "start_to_ready_s": [s["pod_s"] for r in rounds for s in r["starts"]],
        "scale_settled_s": [s["scale_s"] for r in rounds for s in r["starts"]],
        "exit_s": [r["stop"]["exit_s"] for r in rounds],
        "replacement_ready_s": [r["stop"]["replacement_ready_s"] for r in rounds],
        "delete_calls": [r["stop"]["load"]["calls"] for r in rounds],
        "delete_failed": [r["stop"]["load"]["failed"] for r in rounds],
    }


def table(summary: dict[str, Any], rounds: int) -> str:
    lines = [
        f"medians (range) over {rounds} round(s)",
        "",
        "| replicas | calls/s | vs 1 | spread max/min | cores: pods | load clients | rest |",
        "|---|---|---|---|---|---|---|",
    ]
    for replicas, got in summary["by_replicas"].items():
        ratio = "1.00" if replicas == 1 else f"{summary['ratios'][replicas]:.2f}"
        spread = "-" if replicas == 1 else med_range(got["spread"], ".2f")
        lines.append(
            f"| {replicas} | {med_range(got['calls_s'], '.0f')} | {ratio} | {spread} | "
            f"{med_range(got['pod_cores'], '.2f')} | {med_range(got['client_cores'], '.2f')} | "
            f"{med_range(got['other_cores'], '.2f')} |"
        )
    lines += [
        "",
        "| event | samples | seconds |",
        "|---|---|---|",
    ]
    for label, key in (
        ("start to Ready (scale-up, no load)", "start_to_ready_s"),
        ("scale call to settled (outside)", "scale_settled_s"),
        ("start to Ready (replacement, under load)", "replacement_ready_s"),
        ("SIGTERM to exit (under load)", "exit_s"),
    ):
        values = summary[key]
        lines.append(f"| {label} | {len(values)} | {med_range(values, '.2f')} |")
    failed, calls = summary["delete_failed"], summary["delete_calls"]
    lines += ["", f"calls failed while a pod was deleted under load: {failed} of {calls}"]
    return "\n".join(lines)


def check_spread(summary: dict[str, Any]) -> list[str]:
    """The points whose spread is over the bar (reported, not fatal: the machine is shared)."""
    return [
        f"{n} replicas: spread {s:.2f} > {SPREAD_LIMIT}"
        for n, got in summary["by_replicas"].items()
        for s in got["spread"]
        if n > 1 and (s is None or s > SPREAD_LIMIT)
    ]


def preconditions() -> None:
    if os.name != "posix" or os.geteuid() != 0:
        raise SystemExit("needs root: the cluster makes network namespaces (run it with sudo)")
    if shutil.which("ip") is None:
        raise SystemExit("needs iproute2's ip (ip netns)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="repeat everything this often")
    parser.add_argument("--seconds", type=float, default=6.0, help="measured window per point")
    parser.add_argument(
        "--warmup", type=float, default=4.5, help="load before each window (s), > connection age"
    )
    parser.add_argument("--clients", type=int, default=2, help="load client processes")
    parser.add_argument("--callers", type=int, default=32, help="calls in flight, in all")
    parser.add_argument(
        "--connection-age", type=float, default=3.0, help="servers' connection age (s)"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    if min(args.rounds, args.clients) < 1 or min(args.seconds, args.connection_age) <= 0:
        parser.error("--rounds, --clients, --seconds and --connection-age must be positive")
    if args.callers < args.clients:
        parser.error("--callers must be at least --clients")
    if args.warmup <= args.connection_age * 1.1 + 1.0:
        parser.error("--warmup must exceed --connection-age by its 10 %% jitter and 1 s")
    preconditions()
    meta = {k: v for k, v in vars(args).items() if k != "json"}
    meta |= {"cpus": os.cpu_count(), "load": round(os.getloadavg()[0], 2)}
    print(" ".join(f"{k}={v}" for k, v in meta.items()), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        token_file = work / "client-token"
        token_file.write_text(TOKEN + "\n")
        try:
            with make_cluster(work, args) as cluster:
                started = time.monotonic()
                cluster.wait_ready(timeout_s=120)
                meta["first_ready_s"] = round(time.monotonic() - started, 2)
                rounds = [one_round(cluster, token_file, args, i + 1) for i in range(args.rounds)]
        except ConfigError as exc:
            raise SystemExit(f"the cluster could not run: {exc}") from None
    summary = summarise(rounds)
    print("\n" + table(summary, args.rounds))
    over = check_spread(summary)
    print(f"\nspread within {SPREAD_LIMIT}" if not over else "\nover the bar: " + "; ".join(over))
    if args.json:
        result = {"meta": meta, "rounds": rounds, "summary": summary}
        args.json.write_text(json.dumps(result, indent=2, default=str))
    if any(summary["delete_failed"]):
        errors = [e for r in rounds for e in r["stop"]["load"]["errors"]]
        raise SystemExit(f"calls failed while a pod was deleted under load, e.g. {errors[:1]}")


if __name__ == "__main__":
    main()
