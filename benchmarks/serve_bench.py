"""Serving benchmark: fleetmind serve vs MLServer vs a bare grpc.aio echo, batching on/off.

Every server runs alone in its own process, serving the same policy: a real
fleetmind PPO run directory (CartPole-v1, actor and critic MLPs of ``--hidden``
sizes, observation normalisation, one short training run from one seed). Each is
driven by the same load generator: a grpc.aio client in this process sending
pre-serialised ModelInferRequest bytes (one observation row per request, raw FP32
contents) from C concurrent workers.

    .venv/bin/python benchmarks/serve_bench.py [--seconds 4] [--rounds 3] [--skip-mlserver]
    .venv/bin/python benchmarks/serve_bench.py --hidden 2048 2048 2048 \
        --only fleetmind fleetmind-nobatch fleetmind-nobatch-inline

MLServer runs from its own virtual environment (.bench-venvs/mlserver, created
on first use: its dependency pins clash with ours) through a custom runtime
(benchmarks/serve_mlserver_runtime.py) with adaptive batching on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from grpc import aio

from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
VENV = ROOT / ".bench-venvs" / "mlserver"
METHOD = "/inference.GRPCInferenceService/ModelInfer"
READY = "/inference.GRPCInferenceService/ServerReady"
MODEL = "policy"
SEED = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_mlserver_venv() -> Path:
    """Create .bench-venvs/mlserver with CPU torch and MLServer if it is missing."""
    mlserver = VENV / "bin" / "mlserver"
    if not mlserver.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)  # CPU build first
        subprocess.run([*pip, "mlserver==1.7.1"], check=True)
    return mlserver


def make_policy_run(work: Path, hidden: list[int]) -> Path:
    """A real PPO run directory: CartPole-v1, ``hidden`` MLPs, one short training run."""
    import fleetmind
    from fleetmind.algos.ppo.config import PPOConfig

    run_dir = work / "run"
    fleetmind.train(
        "CartPole-v1",
        algo_config=PPOConfig(hidden_sizes=tuple(hidden), rollout_steps=64, minibatch_size=256),
        steps=1024,
        envs=8,
        seed=SEED,
        run_dir=run_dir,
        progress=False,
    )
    return run_dir


def export_policy(run_dir: Path, target: Path) -> None:
    """The served agent's weights and normaliser as plain tensors, for MLServer's runtime."""
    from fleetmind.algos.loading import load_agent

    agent = load_agent(run_dir).agent
    net = agent.policy.net  # type: ignore[attr-defined]
    norm = agent.perceive
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    state["obs_mean"] = torch.as_tensor(norm.stats.mean, dtype=torch.float32)  # type: ignore[attr-defined]
    state["obs_var"] = torch.as_tensor(norm.stats.var, dtype=torch.float32)  # type: ignore[attr-defined]
    state["obs_clip"] = torch.tensor(float(norm.clip))  # type: ignore[attr-defined]
    state["obs_eps"] = torch.tensor(float(norm.epsilon))  # type: ignore[attr-defined]
    torch.save(state, target)


def request_bytes(rows: int = 1) -> bytes:
    obs = np.random.default_rng(0).normal(size=(rows, 4)).astype("<f4")
    request = pb.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="observation", datatype="FP32", shape=list(obs.shape))
    request.raw_input_contents.append(obs.tobytes())
    return request.SerializeToString()


async def _wait_ready(target: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    async with aio.insecure_channel(target) as channel:
        call = channel.unary_unary(READY)
        while time.monotonic() < deadline:
            try:
                reply = pb.ServerReadyResponse.FromString(
                    await call(pb.ServerReadyRequest().SerializeToString(), timeout=2)
                )
                if reply.ready:
                    return
            except aio.AioRpcError:
                pass
            await asyncio.sleep(0.25)
    raise TimeoutError(f"{target} not ready after {timeout}s")


async def _drive(target: str, payload: bytes, concurrency: int, seconds: float) -> dict[str, float]:
    async with aio.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD)
        latencies: list[float] = []
        loop = asyncio.get_running_loop()

        total = [0]

        async def worker(until: float, record: bool) -> None:
            while loop.time() < until:
                start = time.perf_counter()
                await call(payload, timeout=30)
                total[0] += 1
                if record:
                    latencies.append(time.perf_counter() - start)

        warm_until = loop.time() + min(1.0, seconds / 4)
        await asyncio.gather(*(worker(warm_until, False) for _ in range(concurrency)))
        start = loop.time()
        await asyncio.gather(*(worker(start + seconds, True) for _ in range(concurrency)))
        elapsed = loop.time() - start
    lat = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": len(lat),
        "total": total[0],
        "throughput": len(lat) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(
    name: str, proc: subprocess.Popen[bytes], port: int, concurrency: int, seconds: float
) -> dict[str, float]:
    """One point: throughput, latency and server CPU per request at ``concurrency``."""
    cpu_before = cpu_seconds(proc.pid)
    row = asyncio.run(_drive(f"127.0.0.1:{port}", request_bytes(), concurrency, seconds))
    # Server CPU per request (warm-up included on both sides): robust to other load.
    row["server_cpu_us"] = (cpu_seconds(proc.pid) - cpu_before) / row["total"] * 1e6
    row["server"] = name  # type: ignore[assignment]
    return row


def median_row(rows: list[dict[str, float]]) -> dict[str, float]:
    """The median of each figure over rounds (the rows of one server and concurrency)."""
    out = dict(rows[0])
    for key in ("throughput", "p50_ms", "p99_ms", "server_cpu_us"):
        out[key] = float(np.median([r[key] for r in rows]))
    out["rounds"] = len(rows)
    return out


def run_servers(
    servers: list[tuple[str, list[str], dict[str, str] | None]],
    work: Path,
    args: argparse.Namespace,
) -> dict[str, list[dict[str, float]]]:
    """Start every server, then measure them in turn, ``--rounds`` times over.

    Each round drives every server once per concurrency, one after the other, so
    that a change in the machine's load touches all servers alike; the reported
    figure is the median over rounds. Servers that are not being driven are idle.
    """
    procs = {}
    try:
        for name, cmd, env in servers:
            procs[name] = (_start(cmd, work / f"{name}.log", env), port_of(name, cmd, work))
        for _, port in procs.values():
            asyncio.run(_wait_ready(f"127.0.0.1:{port}"))
        points: dict[tuple[str, int], list[dict[str, float]]] = {}
        for round_no in range(args.rounds):
            for concurrency in args.concurrency:
                for name, (proc, port) in procs.items():
                    row = measure(name, proc, port, concurrency, args.seconds)
                    points.setdefault((name, concurrency), []).append(row)
                    print(f"round {round_no + 1}/{args.rounds} {describe(row)}", flush=True)
    finally:
        for proc, _ in procs.values():
            _stop(proc)
    results: dict[str, list[dict[str, float]]] = {}
    print(f"\nmedians over {args.rounds} round(s):")
    for (name, _), rows in points.items():
        row = median_row(rows)
        results.setdefault(name, []).append(row)
        print(describe(row))
    return results


def describe(row: dict[str, float]) -> str:
    """One line for a measured point."""
    return (
        f"{row['server']:<26} c={row['concurrency']:<3} {row['throughput']:8.0f} req/s  "
        f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  "
        f"server CPU {row['server_cpu_us']:6.0f} us/req"
    )


def port_of(name: str, cmd: list[str], work: Path) -> int:
    """The gRPC port a server command was given."""
    if name == "mlserver":
        return int(json.loads((work / "mlserver" / "settings.json").read_text())["grpc_port"])
    if name == "echo":
        return int(cmd[2])
    return int(cmd[cmd.index("--port") + 1])


def fleetmind_serve_cmd(run_dir: Path, port: int, flags: list[str]) -> list[str]:
    """``fleetmind serve`` of ``run_dir`` on ``port`` with ``flags``; otherwise its defaults."""
    return [
        sys.executable,
        "-m",
        "fleetmind",
        "--log-level",
        "WARNING",
        "serve",
        str(run_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model-name",
        MODEL,
        *flags,
    ]


def fleetmind_cmd(run_dir: Path, port: int, batch: int, extra: list[str]) -> list[str]:
    batching = ["--max-batch-size", str(batch), "--max-queue-delay-us", "500"]
    return fleetmind_serve_cmd(run_dir, port, [*batching, *extra])


def echo_response(run_dir: Path) -> bytes:
    """A real fleetmind response to the benchmark request, for the echo server to send."""
    from fleetmind.serve.batcher import BatchPolicy
    from fleetmind.serve.model import agent_forward, build_served_model
    from fleetmind.serve.protocol import decode_observations, requested_outputs
    from fleetmind.serve.repository import default_loader

    model = build_served_model(MODEL, "1", default_loader(run_dir), run_dir, policy=BatchPolicy())
    request = pb.ModelInferRequest.FromString(request_bytes())
    rows = decode_observations(request, model)
    outputs = agent_forward(model.loaded.agent)(rows)  # the forward the server runs
    return model.encoder.encode(request.id, requested_outputs(request, model), outputs)


def mlserver_setup(work: Path, port: int, run_dir: Path) -> tuple[list[str], dict[str, str]]:
    mlserver = ensure_mlserver_venv()
    repo = work / "mlserver"
    model_dir = repo / MODEL
    model_dir.mkdir(parents=True, exist_ok=True)
    export_policy(run_dir, model_dir / "weights.pt")
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": MODEL,
                "implementation": "serve_mlserver_runtime.PolicyRuntime",
                "parameters": {"uri": "./weights.pt"},
                "max_batch_size": 64,
                "max_batch_time": 0.0005,
            }
        )
    )
    (repo / "settings.json").write_text(
        json.dumps(
            {
                "grpc_port": port,
                "http_port": free_port(),
                "metrics_port": free_port(),
                "parallel_workers": 0,
                "host": "127.0.0.1",
            }
        )
    )
    env = dict(os.environ, PYTHONPATH=str(BENCH))
    return [str(mlserver), "start", str(repo)], env


def summarise(results: dict[str, list[dict[str, float]]]) -> None:
    def at(server: str, c: int) -> dict[str, float] | None:
        return next((r for r in results.get(server, []) if r["concurrency"] == c), None)

    print("\nratios (same machine, same load generator):")
    for c in sorted({int(r["concurrency"]) for rows in results.values() for r in rows}):
        fm, echo, off, ml = (
            at(s, c) for s in ("fleetmind", "echo", "fleetmind-nobatch", "mlserver")
        )
        off_inline = at("fleetmind-nobatch-inline", c)
        if off is None or (off_inline and off_inline["throughput"] > off["throughput"]):
            off = off_inline  # batching off at its best placement
        if fm and echo:
            print(
                f"  c={c}: fleetmind/echo throughput {fm['throughput'] / echo['throughput']:.2f} "
                f"(added cost {100 * (1 - fm['throughput'] / echo['throughput']):.0f}%)"
            )
        if fm and off:
            print(f"  c={c}: batching on/off rows/s {fm['throughput'] / off['throughput']:.2f}x")
        cpu = {
            k: r["server_cpu_us"]
            for k, r in (("fm", fm), ("echo", echo), ("off", off), ("ml", ml))
            if r
        }
        if "echo" in cpu and "fm" in cpu:
            added = cpu["fm"] - cpu["echo"]
            print(
                f"  c={c}: server CPU/request fleetmind {cpu['fm']:.0f} us, "
                f"echo {cpu['echo']:.0f} us (fleetmind adds {added:.0f} us)"
            )
        if "off" in cpu and "fm" in cpu:
            print(f"  c={c}: server CPU/request batching off/on {cpu['off'] / cpu['fm']:.2f}x")
        if "ml" in cpu and "fm" in cpu:
            print(f"  c={c}: server CPU/request MLServer/fleetmind {cpu['ml'] / cpu['fm']:.2f}x")
        if fm and ml:
            print(
                f"  c={c}: fleetmind/MLServer throughput "
                f"{fm['throughput'] / ml['throughput']:.2f}x, "
                f"p99 {fm['p99_ms'] / ml['p99_ms']:.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per point")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--skip-mlserver", action="store_true")
    parser.add_argument("--only", nargs="+", help="run only these servers")
    parser.add_argument(
        "--fleetmind-args", nargs=argparse.REMAINDER, default=[], help="extra serve flags"
    )
    parser.add_argument("--json", type=Path, help="also write all rows to this file")
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure every server this many times, in turn"
    )
    parser.add_argument(
        "--hidden", type=int, nargs="+", default=[64, 64], help="hidden sizes of actor and critic"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: measure at least one round")
    print(
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} torch={torch.__version__} "
        f"hidden={args.hidden}"
    )
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_dir = make_policy_run(work, args.hidden)
        response = work / "response.bin"
        response.write_bytes(echo_response(run_dir))
        servers: list[tuple[str, list[str], dict[str, str] | None]] = []
        port = free_port()
        echo = [sys.executable, str(BENCH / "serve_echo_server.py"), str(port), str(response)]
        servers.append(("echo", echo, None))
        servers.append(
            ("fleetmind", fleetmind_cmd(run_dir, free_port(), 64, args.fleetmind_args), None)
        )
        servers.append(
            ("fleetmind-nobatch", fleetmind_cmd(run_dir, free_port(), 1, args.fleetmind_args), None)
        )
        inline = [*args.fleetmind_args, "--no-forward-in-thread"]
        servers.append(
            ("fleetmind-nobatch-inline", fleetmind_cmd(run_dir, free_port(), 1, inline), None)
        )
        if not args.skip_mlserver:
            cmd, env = mlserver_setup(work, free_port(), run_dir)
            servers.append(("mlserver", cmd, env))
        chosen = [srv for srv in servers if not args.only or srv[0] in args.only]
        results = run_servers(chosen, work, args)
    summarise(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
