"""Overload benchmark: `fleetmind serve` (default settings) at 64 to 2,048 concurrent callers.

For each concurrency C, C callers send ModelInfer (one CartPole observation, a
real PPO policy) for ``--seconds``; each sends its next call as soon as its
previous one was answered. Reported over that window: calls answered, refused and
cancelled, the p50/p99 latency of answered calls, the p99 of refusals, answered
calls per second.

Two load generators (``--generator``), because what a caller does after a
refusal decides what a refusal is worth:

* ``backoff`` (default): a grpc.aio client in this process whose callers, after a
  refusal, wait as the fleetmind SDK does (full jitter, 50 ms doubling to 1 s)
  before calling again. It reads every status itself, so every figure is exact.
  It is a Python client: it costs CPU on the server's 2 cores, which the server
  does not get, at every concurrency alike.
* ``node``: the same callers (SDK backoff, exact statuses) in a Node.js process
  (``benchmarks/overload_callers.js``, @grpc/grpc-js from ``scripts/node-client``),
  which costs far less CPU per call than Python and can be pinned away from the
  server (``--load-cpu``): at 1,024 callers and more the Python client is its own
  bottleneck, this one is not.
* ``h2load``: nghttp2's C HTTP/2 client (framed gRPC body), closed loop with no
  pause at all, refusals included: the harshest caller, and cheap to run. h2load
  does not read ``grpc-status``; answered and Python-refused calls come from the
  server's counters, calls refused by gRPC's core are h2load's responses in the
  window minus those, and the latency columns come from ``--probes`` (32) of the
  C callers that are a grpc.aio client (they pause 50 ms after a refusal).

    PYTHONPATH=src .venv/bin/python benchmarks/serve_overload.py [--generator h2load]
    PYTHONPATH=src .venv/bin/python benchmarks/serve_overload.py --generator node \
        --server-cpu 0 --load-cpu 1 [--ramp 6]

``--ramp`` (default 2 s) is how long after the callers start the measured window
begins: 2 s keeps the burst of their first calls in it, 6 s measures sustained load.
"Refused" is RESOURCE_EXHAUSTED (with the server's pushback, which the callers
honour), "cancelled" CANCELLED (gRPC's core beyond its pending-call limit) or
DEADLINE_EXCEEDED.
    PYTHONPATH=src .venv/bin/python benchmarks/serve_overload.py \
        --server-args --max-pending-calls 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import struct
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from grpc import aio

from serve_bench import (
    METHOD,
    MODEL,
    _start,
    _stop,
    _wait_ready,
    free_port,
    make_policy_run,
    request_bytes,
)

PROBE_BACKOFF_S = 0.05
BACKOFF_MAX_S = 1.0
CHANNELS = 8
CALL_TIMEOUT_S = 5.0
RAMP_S = 2
_COUNTER = re.compile(r'^fleetmind_inference_requests_total\{model="[^"]*",status="(\w+)"\} (\S+)$')


def server_counts(metrics_port: int) -> Counter[str]:
    """ModelInfer calls the server has finished, by status."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
        text = page.read().decode()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        match = _COUNTER.match(line)
        if match:
            counts[match.group(1)] += int(float(match.group(2)))
    return counts


@dataclass
class Probes:
    """What the probe callers saw inside the window."""

    statuses: Counter[str] = field(default_factory=Counter)
    answered_ms: list[float] = field(default_factory=list)
    refused_ms: list[float] = field(default_factory=list)


async def callers_with_backoff(
    target: str, payload: bytes, callers: int, start: float, end: float, backoff: bool
) -> Probes:
    """``callers`` closed-loop callers; calls that end within [start, end] are recorded.

    After a refusal a caller waits: ``backoff`` as the SDK does (full jitter, doubling
    from 50 ms to 1 s, or the server's pushback where longer), otherwise 50 ms.
    """
    seen = Probes()
    loop = asyncio.get_running_loop()
    options = [("grpc.enable_retries", 0), ("grpc.use_local_subchannel_pool", 1)]
    channels = [aio.insecure_channel(target, options=options) for _ in range(CHANNELS)]
    rng = random.Random(0)

    async def caller(index: int) -> None:
        call = channels[index % CHANNELS].unary_unary(METHOD)
        wait = PROBE_BACKOFF_S
        while loop.time() < end:
            began = time.perf_counter()
            code, pushback_s = grpc.StatusCode.OK, 0.0
            try:
                await call(payload, timeout=CALL_TIMEOUT_S)
            except aio.AioRpcError as exc:
                code = exc.code()
                trailers = dict(exc.trailing_metadata() or ())
                pushback_s = int(trailers.get("grpc-retry-pushback-ms", 0)) / 1000
            ms = (time.perf_counter() - began) * 1000
            if start <= loop.time() <= end:
                seen.statuses[code.name] += 1
                (seen.answered_ms if code == grpc.StatusCode.OK else seen.refused_ms).append(ms)
            if code == grpc.StatusCode.OK:
                wait = PROBE_BACKOFF_S
            elif backoff:  # the server's pushback, where it sent one, as gRPC's retries do
                await asyncio.sleep(max(pushback_s, rng.uniform(0, wait)))
                wait = min(BACKOFF_MAX_S, 2 * wait)
            else:
                await asyncio.sleep(PROBE_BACKOFF_S)

    try:
        await asyncio.gather(*(caller(i) for i in range(callers)))
    finally:
        for channel in channels:
            await channel.close()
    return seen


def h2load_cmd(port: int, body: Path, streams: int, seconds: int, log: Path) -> list[str]:
    per_connection = min(32, streams)
    if streams % per_connection:
        raise SystemExit(f"{streams} h2load streams are not a multiple of {per_connection}")
    return [
        "h2load",
        *("-H", "content-type: application/grpc", "-H", "te: trailers"),
        *("-H", f"grpc-timeout: {int(CALL_TIMEOUT_S)}S", "-d", str(body)),
        *("-c", str(streams // per_connection), "-m", str(per_connection)),
        *("-D", f"{int(seconds)}s", "--log-file", str(log)),
        f"http://127.0.0.1:{port}{METHOD}",
    ]


def completed_between(log: Path, start_wall: float, end_wall: float) -> int:
    """h2load calls (from its --log-file) whose response arrived within the window."""
    if not log.exists() or log.stat().st_size == 0:
        return 0
    rows = np.loadtxt(log, usecols=(0, 2), ndmin=2)
    done = (rows[:, 0] + rows[:, 1]) / 1e6
    return int(np.count_nonzero((done >= start_wall) & (done <= end_wall)))


async def measure_backoff(
    port: int, concurrency: int, seconds: int, ramp: float = RAMP_S
) -> dict[str, float]:
    """One concurrency driven by callers that back off like the SDK; exact statuses."""
    loop = asyncio.get_running_loop()
    start = loop.time() + ramp
    seen = await callers_with_backoff(
        f"127.0.0.1:{port}", request_bytes(), concurrency, start, start + seconds, backoff=True
    )
    return _status_row(concurrency, seconds, seen)


def _status_row(concurrency: int, seconds: int, seen: Probes) -> dict[str, float]:
    """A point's row from what its callers saw, each status read by the caller."""
    statuses = seen.statuses
    refused = statuses["RESOURCE_EXHAUSTED"]
    # CANCELLED: refused by gRPC's core beyond its pending-call limit (within
    # milliseconds), or cancelled after waiting; DEADLINE_EXCEEDED: waited too long.
    cancelled = statuses["CANCELLED"] + statuses["DEADLINE_EXCEEDED"]
    return _row(concurrency, seconds, seen) | {
        "answered": statuses["OK"],
        "answered_per_s": statuses["OK"] / seconds,
        "refused": refused,
        "cancelled": cancelled,
        "other": sum(statuses.values()) - statuses["OK"] - refused - cancelled,
    }


NODE_CALLERS = Path(__file__).with_name("overload_callers.js")


async def measure_node(
    port: int,
    message: Path,
    concurrency: int,
    seconds: int,
    load_cpu: int | None,
    ramp: float = RAMP_S,
) -> dict[str, float]:
    """One concurrency driven by Node.js callers that back off like the SDK."""
    pin = [] if load_cpu is None else ["taskset", "-c", str(load_cpu)]
    cmd = [*pin, "node", str(NODE_CALLERS), f"127.0.0.1:{port}", str(message),
           str(concurrency), str(CHANNELS), str(ramp), str(seconds)]  # fmt: skip
    load = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await load.communicate()
    if load.returncode != 0:
        raise SystemExit(f"node callers failed ({load.returncode}): {err.decode()[-2000:]}")
    report = json.loads(out.decode().strip().splitlines()[-1])
    seen = Probes(Counter(report["statuses"]), report["answered_ms"], report["refused_ms"])
    return _status_row(concurrency, seconds, seen)


async def measure_h2load(
    port: int, metrics_port: int, body: Path, concurrency: int, args: argparse.Namespace
) -> dict[str, float]:
    """One concurrency driven by h2load (no pause after refusals) plus status probes."""
    streams = concurrency - args.probes
    log = body.parent / f"h2load-{concurrency}.log"
    window = args.seconds
    cmd = h2load_cmd(port, body, streams, int(args.ramp + window + 2), log)
    loop = asyncio.get_running_loop()
    load = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    start = loop.time() + args.ramp
    target = f"127.0.0.1:{port}"
    probes = loop.create_task(
        callers_with_backoff(target, request_bytes(), args.probes, start, start + window, False)
    )
    await asyncio.sleep(args.ramp)
    before, start_wall = await asyncio.to_thread(server_counts, metrics_port), time.time()
    await asyncio.sleep(window)
    after, end_wall = await asyncio.to_thread(server_counts, metrics_port), time.time()
    seen = await probes
    output, _ = await load.communicate()
    if load.returncode != 0:
        raise SystemExit(f"h2load failed:\n{output.decode()}")
    server = after - before
    responses = completed_between(log, start_wall, end_wall) + sum(seen.statuses.values())
    seen_by_python = sum(n for status, n in server.items() if status != "CANCELLED")
    handled = ("OK", "RESOURCE_EXHAUSTED", "CANCELLED")
    return _row(concurrency, window, seen) | {
        "answered": server["OK"],
        "answered_per_s": server["OK"] / window,
        "refused": server["RESOURCE_EXHAUSTED"] + max(0, responses - seen_by_python),
        "cancelled": server["CANCELLED"] + seen.statuses["DEADLINE_EXCEEDED"],
        "other": sum(n for status, n in server.items() if status not in handled),
    }


def _row(concurrency: int, seconds: int, seen: Probes) -> dict[str, float]:
    answered_ms = np.array(seen.answered_ms or [np.nan])
    refused_ms = np.array(seen.refused_ms or [np.nan])
    return {
        "concurrency": concurrency,
        "seconds": seconds,
        "p50_answered_ms": float(np.percentile(answered_ms, 50)),
        "p99_answered_ms": float(np.percentile(answered_ms, 99)),
        "p99_refused_ms": float(np.percentile(refused_ms, 99)),
        "latency_samples": len(seen.answered_ms),
    }


def describe(row: dict[str, float]) -> str:
    return (
        f"c={row['concurrency']:<5} answered {row['answered']:>6} "
        f"({row['answered_per_s']:5.0f}/s)  refused {row['refused']:>7}  "
        f"cancelled {row['cancelled']:>4}  other {row['other']:>3}  p50/p99 answered "
        f"{row['p50_answered_ms']:6.1f}/{row['p99_answered_ms']:6.1f} ms "
        f"({row['latency_samples']} calls)  p99 refused {row['p99_refused_ms']:5.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="measured window per point")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256, 1024, 2048])
    parser.add_argument(
        "--ramp",
        type=float,
        default=RAMP_S,
        help="seconds from the callers' start to the measured window (the start's burst)",
    )
    parser.add_argument("--generator", choices=["backoff", "node", "h2load"], default="backoff")
    parser.add_argument("--probes", type=int, default=32, help="h2load: callers that read statuses")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument(
        "--server-cpu",
        type=int,
        help="pin the server to this CPU (taskset); run the benchmark itself on another",
    )
    parser.add_argument("--load-cpu", type=int, help="node: pin the callers to this CPU")
    parser.add_argument(
        "--server-args", nargs=argparse.REMAINDER, default=[], help="extra serve flags"
    )
    args = parser.parse_args()
    if args.generator == "h2load" and shutil.which("h2load") is None:
        raise SystemExit("h2load not found: install nghttp2-client")
    if (
        args.generator == "node"
        and not (
            NODE_CALLERS.parent.parent
            / "tests"
            / "clients"
            / "node"
            / "node_modules"
            / "@grpc"
            / "grpc-js"
        ).is_dir()
    ):
        raise SystemExit("@grpc/grpc-js not installed: run scripts/node-client (needs npm)")
    print(
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} generator={args.generator} "
        f"server args={args.server_args}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_dir = make_policy_run(work, [64, 64])
        body = work / "request.grpc"
        message = request_bytes()
        body.write_bytes(b"\0" + struct.pack(">I", len(message)) + message)
        raw = work / "request.bin"
        raw.write_bytes(message)
        port, metrics_port = free_port(), free_port()
        pin = [] if args.server_cpu is None else ["taskset", "-c", str(args.server_cpu)]
        cmd = [
            *pin,
            sys.executable,
            *("-m", "fleetmind", "--log-level", "WARNING", "serve", str(run_dir)),
            *("--host", "127.0.0.1", "--port", str(port), "--model-name", MODEL),
            *("--metrics-port", str(metrics_port), *args.server_args),
        ]
        server = _start(cmd, work / "server.log")
        try:
            asyncio.run(_wait_ready(f"127.0.0.1:{port}"))
            for concurrency in args.concurrency:
                if args.generator == "h2load":
                    point = measure_h2load(port, metrics_port, body, concurrency, args)
                elif args.generator == "node":
                    point = measure_node(
                        port, raw, concurrency, args.seconds, args.load_cpu, args.ramp
                    )
                else:
                    point = measure_backoff(port, concurrency, args.seconds, args.ramp)
                row = asyncio.run(point)
                rows.append(row)
                print(describe(row), flush=True)
        finally:
            _stop(server)
            print((work / "server.log").read_text()[-2000:], end="")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
