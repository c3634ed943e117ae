"""What does Flower's deployment engine cost? Round time against the same local
training without Flower, and the bytes each site sends and receives per round.

* ``deployment``: what ``fleetmind federate ENV --engine deployment`` runs
  (:func:`fleetmind.federated.run.federate`: a SuperLink and one SuperNode per site,
  processes of this machine on loopback, TLS and SuperNode authentication), at the
  command's defaults. Round time: differences of consecutive ``wall_time_s`` in
  metrics.jsonl, round 1 (start-up) left out.
* ``baseline``: the same sites without Flower: one long-lived process per site (the
  SuperNodes run in parallel too), each with the project's ``SiteTrainer``. A round
  sends the global weights to every site, each trains ``local_steps`` from them
  (the same seeds: ``round_seed(seed, site, round)``), the parent takes the weighted
  mean of the returned weights, then every site plays ``eval_episodes`` with the new
  global weights (what a deployed round does after training). Round 1 left out too.
* bytes on the wire: every SuperNode is started in a cgroup of its own; iptables
  counts, in a dedicated chain, the packets (IP and TCP headers, TLS and HTTP
  included) of connections a site's cgroup opened to the SuperLink's port, one
  counter each way (CONNMARK marks the connection, so the SuperLink's replies are
  counted too). The counters are read as each round's row appears in metrics.jsonl.
  Needs root, cgroup v2 and ``iptables`` (``apt-get install -y iptables``).

    .venv/bin/python benchmarks/federated_engine.py [--env CartPole-v1] [--sites 2]
        [--rounds 10] [--repeats 1] [--json FILE]

Repeats alternate the order (baseline first, then deployment first, ...). Prints a
markdown table; the ratio's 95% interval is a bootstrap over the rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from fleetmind.federated.client_app import EVAL_SEED_OFFSET
from fleetmind.federated.deployment import Deployment
from fleetmind.federated.global_run import create_run_dir
from fleetmind.federated.run import prepare
from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.site_training import (
    SiteTrainer,
    Weights,
    algo_spec,
    get_weights,
    round_seed,
)
from fleetmind.runtime.parts import build_parts

CHAIN = "FLEETMIND_BENCH"
"""The iptables chain of this benchmark (created, hooked into OUTPUT, removed)."""
TARGET_OVERHEAD = 0.10
BOOTSTRAP_SAMPLES = 10_000


# ---- pure helpers ---------------------------------------------------------------


def round_times(rows: Sequence[dict[str, Any]]) -> list[float]:
    """Seconds each round took after the first: differences of ``wall_time_s``."""
    walls = [float(row["wall_time_s"]) for row in sorted(rows, key=lambda r: r["round"])]
    return [later - earlier for earlier, later in itertools.pairwise(walls)]


def weighted_average(updates: Sequence[Weights], counts: Sequence[float]) -> Weights:
    """FedAvg's mean: each array weighted by its site's step count."""
    if not updates or len(updates) != len(counts) or sum(counts) <= 0:
        raise ValueError(f"need updates with positive counts, got {len(updates)=} {counts=}")
    total = float(sum(counts))
    mean: Weights = {}
    for name, first in updates[0].items():
        acc = np.zeros(first.shape, dtype=np.float64)
        for update, count in zip(updates, counts, strict=True):
            acc += count * update[name]
        mean[name] = (acc / total).astype(first.dtype)
    return mean


def ratio_interval(
    numerator: Sequence[float], denominator: Sequence[float], seed: int = 0
) -> tuple[float, float, float]:
    """Ratio of the means and its 95% bootstrap interval (both samples resampled)."""
    top, bottom = np.asarray(numerator, float), np.asarray(denominator, float)
    if len(top) < 2 or len(bottom) < 2:
        raise ValueError("a ratio interval needs at least 2 values on each side")
    rng = np.random.default_rng(seed)
    a = rng.choice(top, (BOOTSTRAP_SAMPLES, len(top))).mean(axis=1)
    b = rng.choice(bottom, (BOOTSTRAP_SAMPLES, len(bottom))).mean(axis=1)
    low, high = np.percentile(a / b, [2.5, 97.5])
    return float(top.mean() / bottom.mean()), float(low), float(high)


def counter_deltas(snapshots: Sequence[dict[str, int]]) -> list[dict[str, int]]:
    """Per-round byte counts from cumulative counter readings at round ends."""
    return [
        {key: later[key] - earlier[key] for key in later}
        for earlier, later in itertools.pairwise(snapshots)
    ]


def weights_bytes(weights: Weights) -> int:
    """Size of the weights as float32."""
    return sum(int(v.size) * 4 for v in weights.values())


# ---- bytes on the wire: cgroups and iptables ------------------------------------


def fail(message: str) -> SystemExit:
    """The benchmark's one way out on a failure."""
    return SystemExit(f"federated_engine: {message}")


def iptables(*args: str) -> str:
    """Run iptables; SystemExit with its message when it fails."""
    done = subprocess.run(["iptables", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise fail(f"iptables {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class SiteMeter:
    """Per-site cgroups and iptables byte counters for connections to one port."""

    def __init__(self, sites: int) -> None:
        if os.geteuid() != 0 or shutil.which("iptables") is None:
            raise fail("counting bytes needs root and iptables (apt-get install -y iptables)")
        self.root = cgroup2_root()
        own = Path("/proc/self/cgroup").read_text().split("0::", 1)[1].splitlines()[0]
        self.home = self.root / own.lstrip("/")
        self.base = f"fleetmind-bench-{os.getpid()}"
        self.sites = sites
        for site in range(sites):
            (self.root / self.base / f"site-{site}").mkdir(parents=True, exist_ok=True)
        iptables("-N", CHAIN)
        iptables("-I", "OUTPUT", "-j", CHAIN)

    def watch(self, port: int) -> None:
        """Count site -> port and port -> site, per site (one connmark per site)."""
        for site in range(self.sites):
            mark = str(site + 1)
            iptables("-A", CHAIN, "-p", "tcp", "-d", "127.0.0.1", "--dport", str(port),
                     "-m", "cgroup", "--path", f"{self.base}/site-{site}",
                     "-j", "CONNMARK", "--set-mark", mark)  # fmt: skip
            for way, flag in (("up", "--dport"), ("down", "--sport")):
                iptables("-A", CHAIN, "-p", "tcp", flag, str(port), "-m", "connmark",
                         "--mark", mark, "-m", "comment", "--comment", f"{way}-{site}")  # fmt: skip

    def read(self) -> dict[str, int]:
        """Cumulative bytes per counter (``up-0``, ``down-0``, ...)."""
        counts: dict[str, int] = {}
        for line in iptables("-L", CHAIN, "-v", "-n", "-x").splitlines():
            if "/* " in line:
                counts[line.split("/* ")[1].split(" */")[0]] = int(line.split()[1])
        return counts

    @contextlib.contextmanager
    def inside(self, site: int) -> Iterator[None]:
        """This process in site ``site``'s cgroup: what it starts meanwhile stays there."""
        (self.root / self.base / f"site-{site}" / "cgroup.procs").write_text(str(os.getpid()))
        try:
            yield
        finally:
            (self.home / "cgroup.procs").write_text(str(os.getpid()))

    def close(self) -> None:
        """Remove the chain and the (emptied) cgroups."""
        subprocess.run(["iptables", "-D", "OUTPUT", "-j", CHAIN], check=False)
        subprocess.run(["iptables", "-F", CHAIN], check=False)
        subprocess.run(["iptables", "-X", CHAIN], check=False)
        folders = [self.root / self.base / f"site-{s}" for s in range(self.sites)]
        for folder in [*folders, self.root / self.base]:
            for _ in range(100):  # the sites' last ClientApp processes may still be exiting
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


def cgroup2_root() -> Path:
    """Where the cgroup v2 hierarchy is mounted."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] == "cgroup2":
            return Path(fields[1])
    raise fail("no cgroup v2 hierarchy is mounted; iptables' cgroup match needs one")


class MeteredDeployment(Deployment):
    """Flower's deployment as fleetmind starts it, each SuperNode in its site's cgroup."""

    def __init__(self, folder: Path, meter: SiteMeter) -> None:
        super().__init__(folder)
        self.meter = meter

    def start_site(self, site: int, name: str | None = None) -> subprocess.Popen[bytes]:
        with self.meter.inside(site):
            return super().start_site(site, name)


# ---- the deployment engine ------------------------------------------------------


def watch_rows(path: Path, meter: SiteMeter, stop: threading.Event, out: list[Any]) -> None:
    """Read the counters each time metrics.jsonl gains a row."""
    seen = 0
    while True:
        stopping = stop.is_set()  # one more look after the run ends
        rows = path.read_text().count("\n") if path.is_file() else 0
        if rows > seen:
            reading = meter.read()
            out.extend([reading] * (rows - seen))
            seen = rows
        if stopping:
            return
        time.sleep(0.05)


def run_deployment(settings: FederationSettings, folder: Path, meter: SiteMeter) -> dict[str, Any]:
    """One ``fleetmind federate --engine deployment`` run; its round times and bytes."""
    settings.run_dir = folder / "run"
    create_run_dir(settings, prepare(settings), force=False)
    readings: list[dict[str, int]] = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch_rows, args=(settings.run_dir / "metrics.jsonl", meter, stop, readings)
    )
    with MeteredDeployment(folder / "flower", meter) as fleet:
        try:
            fleet.start_superlink()
            meter.watch(fleet.port)
            for site in range(settings.sites):
                fleet.add_site(site)
            watcher.start()
            summary = fleet.run(settings)
        except Exception as exc:
            raise fail(f"the deployment run failed: {exc}") from exc
        finally:
            stop.set()
            if watcher.is_alive():
                watcher.join()
            fleet.stop()
    rows = [json.loads(line) for line in (settings.run_dir / "metrics.jsonl").open()]
    if summary.get("rounds") != settings.rounds or len(rows) != settings.rounds:
        raise fail(f"the deployment ran {len(rows)} of {settings.rounds} rounds")
    if len(readings) != settings.rounds:
        raise fail(f"read the counters at {len(readings)} of {settings.rounds} rounds")
    per_round = counter_deltas(readings)
    zero = [k for k in readings[-1] if not all(d[k] > 0 for d in per_round)]
    if zero or len(readings[-1]) != 2 * settings.sites:
        raise fail(f"byte counters read zero or are missing: {zero or readings[-1]}")
    return {"round_s": round_times(rows), "bytes": per_round}


# ---- the baseline: the same sites without Flower --------------------------------


def site_worker(settings: FederationSettings, site: int, conn: Connection) -> None:
    """One site's process: train or evaluate on request until told to stop."""
    trainer = SiteTrainer(settings, site)
    while (job := conn.recv()) is not None:
        kind, weights, server_round = job
        if kind == "train":
            conn.send(trainer.train(weights, server_round).weights)
        else:
            seed = round_seed(settings.seed + EVAL_SEED_OFFSET, site, server_round)
            conn.send(trainer.evaluate(weights, settings.eval_episodes, seed))


def ask_all(conns: Sequence[Connection], job: tuple[str, Weights, int]) -> list[Any]:
    """Send ``job`` to every site, then collect every answer (the sites work in parallel)."""
    for conn in conns:
        conn.send(job)
    return [conn.recv() for conn in conns]


def run_baseline(settings: FederationSettings, initial: Weights) -> dict[str, Any]:
    """``rounds`` rounds of train, average, evaluate in one process per site."""
    context = mp.get_context("spawn")
    pipes = [context.Pipe() for _ in range(settings.sites)]
    workers = [
        context.Process(target=site_worker, args=(settings, site, child), daemon=True)
        for site, (_, child) in enumerate(pipes)
    ]
    for worker in workers:
        worker.start()
    conns = [parent for parent, _ in pipes]
    weights, train_s, total_s = initial, [], []
    try:
        for server_round in range(1, settings.rounds + 1):
            start = time.monotonic()
            updates = ask_all(conns, ("train", weights, server_round))
            weights = weighted_average(updates, [settings.local_steps] * settings.sites)
            trained = time.monotonic()
            ask_all(conns, ("evaluate", weights, server_round))
            train_s.append(trained - start)
            total_s.append(time.monotonic() - start)
    except (EOFError, OSError) as exc:
        raise fail(f"a baseline site process died: {exc!r}") from exc
    finally:
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for worker in workers:
            worker.join(30)
    return {"round_s": total_s[1:], "train_s": train_s[1:]}


# ---- the benchmark --------------------------------------------------------------


def make_settings(args: argparse.Namespace) -> FederationSettings:
    """The command's defaults, but for the env, sites and rounds given."""
    settings = FederationSettings(
        env_id=args.env, sites=args.sites, rounds=args.rounds, engine="deployment"
    )
    prepare(settings)
    return settings


def initial_weights(settings: FederationSettings) -> Weights:
    """The global weights of round 0, as the ServerApp makes them."""
    spec, algo_cfg = algo_spec(settings)
    parts = build_parts(
        settings.env_id, spec, algo_cfg, envs=1, seed=settings.seed, normalize_obs=False
    )
    parts.env.close()
    return get_weights(parts)


def cold_start_s() -> float:
    """Seconds a fresh interpreter takes to import the ClientApp (Flower starts one
    ``flwr-clientapp`` process per message)."""
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import fleetmind.federated.client_app"], check=True, timeout=300
    )
    return time.monotonic() - start


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Alternate baseline and deployment ``repeats`` times; pool their rounds."""
    probe = make_settings(args)
    initial = initial_weights(probe)
    dtypes = {str(v.dtype) for v in initial.values()}
    deployed: list[float] = []
    baseline: list[float] = []
    training: list[float] = []
    traffic: list[dict[str, int]] = []
    meter = SiteMeter(args.sites)
    try:
        for repeat in range(args.repeats):
            order = ("baseline", "deployment") if repeat % 2 == 0 else ("deployment", "baseline")
            for kind in order:
                print(f"repeat {repeat + 1}/{args.repeats}: {kind}", file=sys.stderr, flush=True)
                if kind == "baseline":
                    done = run_baseline(make_settings(args), initial)
                    baseline += done["round_s"]
                    training += done["train_s"]
                    continue
                with tempfile.TemporaryDirectory(prefix="fleetmind-engine-") as folder:
                    done = run_deployment(make_settings(args), Path(folder), meter)
                deployed += done["round_s"]
                traffic += done["bytes"]
    finally:
        meter.close()
    return {
        "env": probe.env_id,
        "algo": probe.algo,
        "sites": probe.sites,
        "rounds": probe.rounds,
        "local_steps": probe.local_steps,
        "envs": probe.envs,
        "eval_episodes": probe.eval_episodes,
        "repeats": args.repeats,
        "weights_float32_bytes": weights_bytes(initial),
        "weights_dtypes": sorted(dtypes),
        "deployment_round_s": deployed,
        "baseline_round_s": baseline,
        "baseline_train_s": training,
        "bytes_per_round": traffic,
        "clientapp_cold_start_s": cold_start_s(),
    }


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Medians, means and the ratios with their intervals."""
    deployed, baseline = result["deployment_round_s"], result["baseline_round_s"]
    training = result["baseline_train_s"]
    ratio = ratio_interval(deployed, baseline)
    ratio_train = ratio_interval(deployed, training)
    per_site = {
        key: statistics.median(row[key] for row in result["bytes_per_round"])
        for key in result["bytes_per_round"][0]
    }
    return {
        "ratio": ratio,
        "ratio_vs_training_only": ratio_train,
        "target_met": ratio[2] <= 1 + TARGET_OVERHEAD,
        "bytes_median": per_site,
    }


def table(result: dict[str, Any], summary: dict[str, Any]) -> str:
    """The markdown table of the figures."""
    mid, lo, hi = summary["ratio"]
    tmid, tlo, thi = summary["ratio_vs_training_only"]
    lines = [
        "| measure | median | mean | rounds |",
        "|---|---:|---:|---:|",
    ]
    for name, key in (
        ("deployment engine round (s)", "deployment_round_s"),
        ("baseline round: train + average + evaluate (s)", "baseline_round_s"),
        ("baseline: train + average only (s)", "baseline_train_s"),
    ):
        values = result[key]
        lines.append(
            f"| {name} | {statistics.median(values):.3f} | {statistics.mean(values):.3f} "
            f"| {len(values)} |"
        )
    lines += [
        f"| ratio deployment / baseline (means, 95% interval) | {mid:.1f} [{lo:.1f}, {hi:.1f}] "
        f"| | |",
        f"| ratio deployment / train + average only | {tmid:.1f} [{tlo:.1f}, {thi:.1f}] | | |",
        f"| fresh interpreter importing the ClientApp (s) | {result['clientapp_cold_start_s']:.2f} "
        f"| | 1 |",
    ]
    counts = len(result["bytes_per_round"])
    for site in range(result["sites"]):
        for way, label in (("up", "site -> SuperLink"), ("down", "SuperLink -> site")):
            values = [row[f"{way}-{site}"] for row in result["bytes_per_round"]]
            lines.append(
                f"| site {site}: {label} bytes per round | {statistics.median(values):,.0f} "
                f"| {statistics.mean(values):,.0f} | {counts} |"
            )
    lines.append(
        f"| model weights, float32 bytes (for scale) | {result['weights_float32_bytes']:,} | | |"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--sites", type=int, default=FederationSettings.sites)
    parser.add_argument("--rounds", type=int, default=FederationSettings.rounds)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.rounds < 3 or args.repeats < 1:
        raise fail("--rounds must be at least 3 (round 1 is left out) and --repeats at least 1")
    result = measure(args)
    summary = summarise(result)
    print(
        f"{result['env']}, {result['algo']}, {result['sites']} sites, {result['rounds']} rounds "
        f"of {result['local_steps']} steps ({result['envs']} envs) a site, "
        f"{result['eval_episodes']} evaluation episodes, {result['repeats']} repeat(s)\n"
    )
    print(table(result, summary))
    verdict = "met" if summary["target_met"] else "not met"
    print(f"\ntarget (overhead at most {TARGET_OVERHEAD:.0%}): {verdict}")
    if args.json is not None:
        args.json.write_text(json.dumps({**result, **summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
