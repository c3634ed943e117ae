"""Edge offloading: the client's decision latency against always-local and always-remote.

A ``fleetmind serve`` replica runs in its own network namespace behind a veth link
(:class:`tests.multihost.shaped_link.ShapedLink`); the edge runs in a cgroup whose CPU
quota makes it the weaker machine (``--cpu-quota``, a share of one CPU; the model
really computes, nothing sleeps). Both hold the same model. For each link setting (added
delay 0, 20 and 100 ms each way, 5 % packet loss) the edge measures, in interleaved
blocks, the mean decision latency of always-local, always-remote and the offloading
client, and prints the client's ratio to the better of the two (target: <= 1.1)::

    sudo .venv/bin/python benchmarks/edge_offloading.py [--cpu-quota 0.25] [--block-s 2]

Needs root, ``ip`` and ``iptables``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.multihost.shaped_link import ShapedLink  # noqa: E402

from fleetmind.serve import Client  # noqa: E402
from fleetmind.serve.edge_remote import GrpcRemote, LocalAgent  # noqa: E402
from fleetmind.serve.offloading import EdgeConfig, OffloadingClient  # noqa: E402
from fleetmind.serve.testing import write_toy_checkpoint  # noqa: E402

NS = "fm-edge-bench"
PORT = 50091
TOKEN = "edge-bench"
LOADER = "fleetmind.serve.testing:toy_loader"
CGROUP = Path("/sys/fs/cgroup/cpu/fleetmind-edge-bench")
PERIOD_US = 20_000
SETTINGS = (("delay 0 ms", 0, 0.0), ("delay 20 ms", 20, 0.0), ("delay 100 ms", 100, 0.0),
            ("loss 5 %", 0, 5.0))  # fmt: skip


def connect(target: str) -> Client:
    return Client(target, token=TOKEN, max_attempts=1, own_connections=True, timeout_s=10)


def edge_worker(args: argparse.Namespace) -> None:
    """Inside the cgroup: measure the three ways of deciding, in interleaved blocks."""
    import torch

    torch.set_num_threads(1)
    local = LocalAgent.load(Path(args.run_dir), LOADER)
    remote = GrpcRemote(args.target, "m", connect)
    config = EdgeConfig(deadline_s=args.deadline_ms / 1000)
    client = OffloadingClient(local, [GrpcRemote(args.target, "m", connect)], config)
    rng = np.random.default_rng(0)
    latencies: dict[str, list[float]] = {"local": [], "remote": [], "client": []}
    places: dict[str, int] = {}
    by_place: dict[str, list[float]] = {}

    def block(mode: str) -> None:
        end = time.monotonic() + args.block_s
        while time.monotonic() < end:
            obs = rng.normal(size=4).astype(np.float32)
            start = time.monotonic()
            if mode == "local":
                local.act(obs)
            elif mode == "remote":
                remote.act(obs, 10.0)
            else:
                decision = client.decide(obs)
                place = "local" if decision.place == "local" else "remote"
                places[place] = places.get(place, 0) + 1
                by_place.setdefault(place, []).append(decision.latency_s)
            latencies[mode].append(time.monotonic() - start)

    for _ in range(args.blocks):
        for mode in latencies:
            block(mode)
    client.close()
    remote.close()
    means = {mode: float(np.mean(values)) for mode, values in latencies.items()}
    client_by_place = {place: float(np.mean(v)) for place, v in by_place.items()}
    print(json.dumps({"means": means, "counts": {m: len(v) for m, v in latencies.items()},
                      "places": places, "client_by_place": client_by_place}))  # fmt: skip


def run_edge(args: argparse.Namespace, run_dir: Path, target: str) -> dict[str, object]:
    command = [sys.executable, __file__, "--edge-worker", "--run-dir", str(run_dir),
               "--target", target, "--block-s", str(args.block_s), "--blocks",
               str(args.blocks), "--deadline-ms", str(args.deadline_ms)]  # fmt: skip

    def into_cgroup() -> None:
        (CGROUP / "cgroup.procs").write_text(str(os.getpid()))

    out = subprocess.run(command, preexec_fn=into_cgroup, capture_output=True, text=True,
                         check=False, env=_env())  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"edge worker failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpu-quota", type=float, default=0.25, help="edge CPU share")
    parser.add_argument("--hidden", type=int, default=4096, help="width of the model")
    parser.add_argument("--block-s", type=float, default=0.5, help="seconds per block")
    parser.add_argument("--blocks", type=int, default=12, help="blocks per way of deciding")
    parser.add_argument("--deadline-ms", type=float, default=500.0)
    parser.add_argument("--edge-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.edge_worker:
        edge_worker(args)
        return
    work = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    write_toy_checkpoint(work / "model", seed=1, hidden=args.hidden)
    (work / "token").write_text(TOKEN + "\n")
    CGROUP.mkdir(exist_ok=True)
    (CGROUP / "cpu.cfs_period_us").write_text(str(PERIOD_US))
    (CGROUP / "cpu.cfs_quota_us").write_text(str(int(PERIOD_US * args.cpu_quota)))
    print(f"edge: {args.cpu_quota:.0%} of a CPU (cgroup quota); model 4-{args.hidden}-"
          f"{args.hidden}-3 on both sides; deadline {args.deadline_ms:g} ms")  # fmt: skip
    print(f"{'link':<14}{'local ms':>10}{'remote ms':>11}{'client ms':>11}{'ratio':>8}"
          f"{'remote share':>14}")  # fmt: skip
    with (
        ShapedLink(NS, subnet="10.73.0", device="fmb") as link,
        (work / "serve.log").open("wb") as log,
    ):
        serve = [sys.executable, "-m", "fleetmind", "serve", str(work / "model"), "--host",
                 link.remote_ip, "--port", str(PORT), "--loader", LOADER, "--model-name", "m",
                 "--token-file", str(work / "token")]  # fmt: skip
        server = subprocess.Popen(link.inside(serve), stdout=log, stderr=log, env=_env())
        relays = []
        try:
            _wait_ready(f"{link.remote_ip}:{PORT}")
            for name, delay_ms, loss_pct in SETTINGS:
                port = PORT
                if delay_ms:
                    port = PORT + delay_ms
                    relays.append(link.delay_line(port, PORT, delay_ms))
                    time.sleep(1.0)
                link.shape(loss_pct=loss_pct)
                result = run_edge(args, work / "model", f"{link.remote_ip}:{port}")
                _report(name, result)
        finally:
            for proc in [*relays, server]:
                proc.terminate()
                proc.wait(timeout=30)
            CGROUP.rmdir()


def _env() -> dict[str, str]:
    """This checkout's fleetmind first, for every process the benchmark starts."""
    return {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}


def _wait_ready(target: str) -> None:
    deadline = time.monotonic() + 60
    with connect(target) as client:
        while time.monotonic() < deadline:
            try:
                if client.server_ready():
                    return
            except Exception:
                time.sleep(0.2)
    raise RuntimeError(f"server at {target} did not become ready")


def _report(name: str, result: dict[str, object]) -> None:
    means: dict[str, float] = result["means"]  # type: ignore[assignment]
    places: dict[str, int] = result["places"]  # type: ignore[assignment]
    best = min(means["local"], means["remote"])
    remote_share = 1 - places.get("local", 0) / max(1, sum(places.values()))
    print(f"{name:<14}{1000 * means['local']:>10.2f}{1000 * means['remote']:>11.2f}"
          f"{1000 * means['client']:>11.2f}{means['client'] / best:>8.2f}"
          f"{remote_share:>14.0%}", flush=True)  # fmt: skip
    by_place: dict[str, float] = result["client_by_place"]  # type: ignore[assignment]
    detail = ", ".join(f"{p} {1000 * v:.2f} ms" for p, v in sorted(by_place.items()))
    print(f"{'':<14}client decisions: {detail}", flush=True)


if __name__ == "__main__":
    main()
