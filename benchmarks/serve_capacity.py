"""Serving capacity: fleetmind serve vs MLServer vs a bare grpc.aio server, driven by h2load.

What it measures: answered calls per second and the p50/p99 latency of ModelInfer
(one CartPole observation row, the policy of a real PPO run: see
serve_bench.make_policy_run) at a fixed number of calls in flight, for

* ``fleetmind``: ``fleetmind serve`` with its defaults (one process; the one flag
  added is ``--metrics-port``, whose page is read only between runs);
* ``fleetmind-w1``, ``fleetmind-w2``: the same with ``--workers 1`` and ``--workers 2``;
* ``mlserver``: MLServer 1.7.1 with adaptive batching (64 rows, 0.5 ms), from its own
  virtual environment .bench-venvs/mlserver (serve_bench.mlserver_setup);
* ``echo``: a bare grpc.aio server answering fleetmind's answer as fixed bytes
  (serve_echo_server.py), the ceiling of a Python gRPC server on this machine;

and the ratios of each fleetmind variant to the echo server and to MLServer. The
servers run the fleetmind that PYTHONPATH names. The load generator is h2load
(nghttp2's C HTTP/2 client, closed loop: each stream sends its next call as soon as
its previous one is answered), so the client costs little CPU next to the servers.
``--levels`` are the calls in flight, as h2load connections x streams per
connection: 1 (1x1), 16 (1x16), 64 (4x16), 512 (8x64).

Every server is started once; each round then drives every server at every level
in turn (servers not being driven are idle), and the figures are the medians over
``--rounds``. One point: a warm-up of ``--warmup`` seconds (h2load ``-D``; its rate
sizes the measured run), then a measured run of a fixed number n of calls, about
``--seconds`` long and at least 8 per stream (h2load ``-n``). Not ``-D`` with
``--warm-up-time``: h2load then adds up the DATA bytes of warm-up calls and of calls
cut off at the end, but counts neither, so bytes per call would prove nothing.
Req/s and latency come from h2load's per-request log, over the window in which all
streams were busy: from the first request until the (n - in flight)-th answer (the
drain at the end, when streams run out of calls, is left out).

How every call is proven answered (any failed check ends the run, SystemExit):

1. before measuring, each server is sent the exact request once by a grpc.aio client
   (raw bytes), which requires status OK and a ModelInferResponse with outputs; the
   size of that answer is recorded;
2. h2load does not read ``grpc-status``, but a gRPC error is a trailers-only response
   without a DATA frame, while an answer is one message of a fixed size: so in each
   measured run h2load must report n calls done and succeeded, n 2xx, 0 failed,
   and exactly n x (5 + answer size) DATA bytes (5: the gRPC frame prefix), and its
   log must list n calls, all HTTP 200. fleetmind's answers carry their queue and
   compute time as INT64 response parameters, varints of 1 to 4 bytes each: for
   them the DATA bytes must lie between n x (5 + shortest answer) and n x (5 +
   longest), and check 3 is then required too;
3. for fleetmind, the server's own ``fleetmind_inference_requests_total`` (its
   ``--metrics-port`` page) must have grown by n with status OK and by 0 with any
   other status (for ``--workers`` only where the page counts the workers' calls).

    PYTHONPATH=src .venv/bin/python benchmarks/serve_capacity.py \
        [--seconds 5] [--rounds 3] [--warmup 2] [--levels 1 16 64 512] \
        [--only fleetmind fleetmind-w1 fleetmind-w2 mlserver echo] \
        [--server-cpus 0 --load-cpus 1] [--json capacity.json]

fleetmind runs with load shedding off (``--max-wait-ms 0``): at 512 streams that send
again at once, calls wait longer than the default 100 ms, and a refusal would end the
run (check 2); capacity is what is measured, not overload (serve_overload.py).

h2load's process is pinned with ``--load-cpus`` and the servers with
``--server-cpus`` (taskset lists); by default nothing is pinned.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.error import URLError

import grpc
import numpy as np
import torch
from grpc import aio

from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from serve_bench import (
    BENCH,
    METHOD,
    _start,
    _stop,
    _wait_ready,
    cpu_seconds,
    echo_response,
    fleetmind_serve_cmd,
    free_port,
    make_policy_run,
    mlserver_setup,
    request_bytes,
)
from serve_overload import server_counts

SERVERS = ("fleetmind", "fleetmind-w1", "fleetmind-w2", "mlserver", "echo")
WORKERS = {"fleetmind-w1": 1, "fleetmind-w2": 2}
LABELS = {
    "fleetmind": "fleetmind serve",
    "fleetmind-w1": "fleetmind serve --workers 1",
    "fleetmind-w2": "fleetmind serve --workers 2",
    "mlserver": "MLServer 1.7.1 (adaptive batching)",
    "echo": "bare grpc.aio (fixed bytes)",
}
FRAME_PREFIX = 5  # gRPC message prefix: compressed flag (1 byte) and length (4 bytes)
COUNTER_WAIT_S = 5.0
TIMING_PARAMETERS = ("queue_time_us", "compute_time_us")
"""fleetmind's per-answer response parameters (fleetmind.serve.response)."""
TIMING_VARINT_MAX = 4
"""Longest varint of a timing parameter in a proven answer: 4 bytes hold 268 s in µs."""


def varint_size(value: int) -> int:
    """Bytes of ``value`` as a protobuf varint (int64: negatives take 10)."""
    if value < 0:
        return 10
    return max(1, (value.bit_length() + 6) // 7)


_REQUESTS = re.compile(
    r"^requests: (?P<total>\d+) total, (?P<started>\d+) started, (?P<done>\d+) done, "
    r"(?P<succeeded>\d+) succeeded, (?P<failed>\d+) failed, (?P<errored>\d+) errored, "
    r"(?P<timeout>\d+) timeout$",
    re.MULTILINE,
)
_STATUS = re.compile(
    r"^status codes: (?P<s2xx>\d+) 2xx, (?P<s3xx>\d+) 3xx, (?P<s4xx>\d+) 4xx, (?P<s5xx>\d+) 5xx$",
    re.MULTILINE,
)
_TRAFFIC = re.compile(r"^traffic: .*\((?P<data>\d+)\) data$", re.MULTILINE)
_FINISHED = re.compile(r"^finished in \S+, (?P<rps>[\d.]+) req/s", re.MULTILINE)


@dataclass(frozen=True)
class Level:
    """Calls in flight: h2load connections x concurrent streams per connection."""

    connections: int
    streams: int

    @property
    def in_flight(self) -> int:
        return self.connections * self.streams

    def __str__(self) -> str:
        return f"{self.in_flight} ({self.connections}x{self.streams})"


def parse_level(text: str) -> Level:
    """``CxM`` (connections x streams), or a count: up to 16 on one connection, up to 64
    as connections of 16 streams, beyond as connections of 64 streams."""
    try:
        if "x" in text:
            connections, streams = (int(part) for part in text.split("x"))
        else:
            total = int(text)
            streams = total if total <= 16 else 16 if total <= 64 else 64
            if total % streams:
                raise ValueError
            connections = total // streams
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give CxM (connections x streams) or a count that is at most 16, "
            "a multiple of 16 up to 64, or a multiple of 64"
        ) from None
    if connections < 1 or streams < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: connections and streams must be >= 1")
    return Level(connections, streams)


@dataclass
class Server:
    name: str
    cmd: list[str]
    port: int
    env: dict[str, str] | None = None
    metrics_port: int | None = None
    answer_bytes: int = 0  # size of its ModelInferResponse to the benchmark request
    answer_slack: int = 0
    """Bytes an answer may be longer than the shortest: fleetmind reports its queue and
    compute time in microseconds as INT64 response parameters, varints of 1 to
    TIMING_VARINT_MAX bytes each."""

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class H2loadReport:
    """The figures of h2load's summary this benchmark relies on."""

    total: int
    started: int
    done: int
    succeeded: int
    failed: int
    errored: int
    timeout: int
    status_2xx: int
    status_other: int
    data_bytes: int
    req_s: float


def parse_h2load(output: str) -> H2loadReport:
    """h2load's summary (nghttp2 1.52 format); SystemExit if a line is not there."""
    requests, status = _REQUESTS.search(output), _STATUS.search(output)
    traffic, finished = _TRAFFIC.search(output), _FINISHED.search(output)
    if requests is None or status is None or traffic is None or finished is None:
        raise SystemExit(f"h2load output not recognised (nghttp2 format changed?):\n{output}")
    n = {key: int(value) for key, value in requests.groupdict().items()}
    return H2loadReport(
        **n,
        status_2xx=int(status["s2xx"]),
        status_other=int(status["s3xx"]) + int(status["s4xx"]) + int(status["s5xx"]),
        data_bytes=int(traffic["data"]),
        req_s=float(finished["rps"]),
    )


def h2load_cmd(
    server: Server, level: Level, body: Path, pin: list[str], run: list[str]
) -> list[str]:
    """h2load sending the framed gRPC request ``body`` as HTTP/2 POSTs; ``run``: -n/-D."""
    return [
        *pin,
        "h2load",
        *("-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(body)),
        *("-c", str(level.connections), "-m", str(level.streams), *run),
        f"http://{server.target}{METHOD}",
    ]


def run_h2load(cmd: list[str], timeout: float) -> H2loadReport:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"h2load took over {timeout:.0f} s: {' '.join(cmd)}") from None
    if done.returncode != 0:
        raise SystemExit(f"h2load failed ({done.returncode}): {done.stdout}{done.stderr}")
    return parse_h2load(done.stdout)


async def _probe(target: str, payload: bytes) -> bytes:
    async with aio.insecure_channel(target) as channel:
        method: aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
        call = method(payload, timeout=30)
        try:
            answer = await call
        except aio.AioRpcError as exc:
            detail = f"{target}: ModelInfer failed: {exc.code().name} {exc.details()}"
            raise SystemExit(detail) from None
        if await call.code() != grpc.StatusCode.OK:
            raise SystemExit(f"{target}: ModelInfer ended {(await call.code()).name}")
    return answer


def probe(server: Server, payload: bytes) -> None:
    """One call by a real gRPC client: status OK and a response with outputs."""
    answer = asyncio.run(_probe(server.target, payload))
    response = pb.ModelInferResponse.FromString(answer)
    if not response.outputs:
        raise SystemExit(f"{server.name}: ModelInfer answered OK without outputs: {response}")
    server.answer_bytes = len(answer)
    timings = [
        value.int64_param
        for key, value in response.parameters.items()
        if key in TIMING_PARAMETERS and value.WhichOneof("parameter_choice") == "int64_param"
    ]
    if timings:
        # the probe's own varints give the answer's fixed part; each may be 1 to 4 bytes
        fixed = len(answer) - sum(varint_size(v) for v in timings)
        server.answer_bytes = fixed + len(timings)  # the shortest possible answer
        server.answer_slack = len(timings) * (TIMING_VARINT_MAX - 1)
        if server.metrics_port is None:
            raise SystemExit(f"{server.name}: answers vary in size and no counter proves them")
    outputs = ", ".join(f"{out.name} {out.datatype}{list(out.shape)}" for out in response.outputs)
    print(f"{server.name}: gRPC OK, answer {len(answer)} bytes ({outputs})", flush=True)


def counts(server: Server) -> Counter[str] | None:
    """The server's ModelInfer calls by status, from its metrics page; None without one."""
    if server.metrics_port is None:
        return None
    try:
        return server_counts(server.metrics_port)
    except (URLError, OSError):
        return None


def settled_counts(server: Server) -> Counter[str] | None:
    """The counts once calls left over from the warm-up have been recorded."""
    last = counts(server)
    deadline = time.monotonic() + COUNTER_WAIT_S
    while last is not None and time.monotonic() < deadline:
        time.sleep(0.2)
        now = counts(server)
        if now == last:
            break
        last = now
    return last


def check_counter(server: Server, before: Counter[str] | None, calls: int) -> int | None:
    """The server's OK count over a run must be ``calls`` (and nothing else counted).

    Returns the OK count, or None where the page does not count them (``--workers``
    before their calls reach the parent's page).
    """
    if server.metrics_port is None:
        return None  # not fleetmind
    optional = server.name in WORKERS
    after = counts(server)
    deadline = time.monotonic() + COUNTER_WAIT_S
    while before is not None and after is not None and time.monotonic() < deadline:
        if (after - before)["OK"] >= calls:
            break
        time.sleep(0.1)
        after = counts(server)
    if before is None or after is None:
        if optional:
            return None
        raise SystemExit(f"{server.name}: no metrics page on port {server.metrics_port}")
    delta = after - before
    if optional and not delta:
        return None
    others = {status: n for status, n in delta.items() if status != "OK"}
    if delta["OK"] != calls or others:
        raise SystemExit(
            f"{server.name}: h2load saw {calls} answers, the server counted "
            f"{delta['OK']} OK and {others or 'no'} other statuses"
        )
    return delta["OK"]


def window(log: Path, calls: int, in_flight: int) -> tuple[float, np.ndarray]:
    """Req/s and latencies (ms) from h2load's log, while all streams were busy.

    Log rows: start (us since the epoch), HTTP status (-1: failed stream), duration (us).
    The window runs from the first request to the (calls - in_flight)-th answer: after
    it, streams that have sent their share of the calls fall idle.
    """
    rows = np.loadtxt(log, dtype=np.int64, ndmin=2)
    if len(rows) != calls or not np.all(rows[:, 1] == 200):
        statuses = dict(Counter(rows[:, 1].tolist()))
        raise SystemExit(f"h2load log {log}: {len(rows)} rows (expected {calls}), {statuses}")
    ends = rows[:, 0] + rows[:, 2]
    order = np.argsort(ends, kind="stable")
    kept = order[: calls - in_flight]
    seconds = (ends[kept[-1]] - rows[:, 0].min()) / 1e6
    return len(kept) / seconds, rows[kept, 2] / 1e3


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and every process below it (workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            total += cpu_seconds(current)
        except OSError:  # exited meanwhile
            continue
    return total


def measure(
    server: Server,
    proc: subprocess.Popen[bytes],
    level: Level,
    body: Path,
    work: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One point: warm-up, then a run of a fixed number of calls, each proven answered."""
    pin = ["taskset", "-c", args.load_cpus] if args.load_cpus else []
    warm = run_h2load(
        h2load_cmd(server, level, body, pin, ["-D", f"{round(args.warmup * 1000)}ms"]),
        timeout=args.warmup + 60,
    )
    if warm.succeeded == 0 or warm.failed or warm.status_2xx != warm.succeeded:
        raise SystemExit(f"{server.name} at {level}: warm-up calls failed: {warm}")
    # Equal shares per connection, enough calls for the drain to be a small part.
    per_connection = math.ceil(warm.succeeded / args.warmup * args.seconds / level.connections)
    calls = level.connections * max(per_connection, 8 * level.streams)
    log = work / f"h2load-{server.name}-{level.in_flight}.log"
    log.unlink(missing_ok=True)  # h2load appends
    before = settled_counts(server)
    cpu_before = tree_cpu_seconds(proc.pid)
    report = run_h2load(
        h2load_cmd(server, level, body, pin, ["-n", str(calls), "--log-file", str(log)]),
        timeout=60 + 20 * args.seconds,
    )
    cpu_us = (tree_cpu_seconds(proc.pid) - cpu_before) / calls * 1e6
    framed = FRAME_PREFIX + server.answer_bytes
    longest = framed + server.answer_slack
    proven = (
        report.total == report.started == report.done == report.succeeded == calls
        and report.failed == report.errored == report.timeout == 0
        and report.status_2xx == calls
        and report.status_other == 0
        and calls * framed <= report.data_bytes <= calls * longest
    )
    if not proven:
        expected = f"{calls * framed}" + (f" to {calls * longest}" if longest > framed else "")
        raise SystemExit(
            f"{server.name} at {level}: not every call was answered: sent {calls}, expected "
            f"{expected} DATA bytes ({framed} per answer); h2load reported {report}"
        )
    counted = check_counter(server, before, calls)
    if counted is None and server.answer_slack:
        raise SystemExit(f"{server.name} at {level}: answers vary in size, no counter saw them")
    req_s, latency_ms = window(log, calls, level.in_flight)
    return {
        "server": server.name,
        "in_flight": level.in_flight,
        "connections": level.connections,
        "streams": level.streams,
        "calls": calls,
        "req_s": req_s,
        "p50_ms": float(np.percentile(latency_ms, 50)),
        "p99_ms": float(np.percentile(latency_ms, 99)),
        "cpu_us": cpu_us,
        "h2load_req_s": report.req_s,  # whole run, drain included
        "data_bytes": report.data_bytes,
        "answer_bytes": server.answer_bytes,
        "answer_slack": server.answer_slack,
        "server_counted_ok": counted,
    }


def describe(row: dict[str, Any]) -> str:
    counted = row["server_counted_ok"]
    server = "" if counted is None else f", server counted {counted} OK"
    return (
        f"{row['server']:<13} {row['in_flight']:>4} in flight ({row['connections']}x"
        f"{row['streams']}) {row['req_s']:8.0f} req/s  p50 {row['p50_ms']:7.2f} ms  "
        f"p99 {row['p99_ms']:7.2f} ms  CPU {row['cpu_us']:5.0f} us/call  "
        f"[{row['calls']} calls all OK: "
        f"{row['data_bytes']} B = {row['calls']} x (5 + {row['answer_bytes']}"
        f"{' + 0..' + str(row['answer_slack']) if row['answer_slack'] else ''}){server}]"
    )


def median_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per server and level, the median of req/s, p50 and p99 over the rounds."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["server"], row["in_flight"]), []).append(row)
    medians = []
    for (server, in_flight), group in groups.items():
        medians.append(
            {
                "server": server,
                "in_flight": in_flight,
                "connections": group[0]["connections"],
                "streams": group[0]["streams"],
                "rounds": len(group),
                "calls": sum(r["calls"] for r in group),
                **{
                    k: float(np.median([r[k] for r in group]))
                    for k in ("req_s", "p50_ms", "p99_ms", "cpu_us")
                },
            }
        )
    return medians


def add_ratios(medians: list[dict[str, Any]]) -> None:
    """Each fleetmind row gets its req/s over echo's and MLServer's, and p99 over MLServer's."""
    at = {(row["server"], row["in_flight"]): row for row in medians}
    for row in medians:
        if not row["server"].startswith("fleetmind"):
            continue
        echo, ml = at.get(("echo", row["in_flight"])), at.get(("mlserver", row["in_flight"]))
        row["req_s_vs_echo"] = row["req_s"] / echo["req_s"] if echo else None
        row["cpu_vs_echo"] = row["cpu_us"] / echo["cpu_us"] if echo else None
        row["req_s_vs_mlserver"] = row["req_s"] / ml["req_s"] if ml else None
        row["p99_vs_mlserver"] = row["p99_ms"] / ml["p99_ms"] if ml else None


def markdown(medians: list[dict[str, Any]], rounds: int) -> str:
    def ratio(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}"

    lines = [
        "| server | in flight | req/s | p50 ms | p99 ms | CPU µs/call | req/s ÷ bare grpc.aio "
        "| CPU/call ÷ bare | req/s ÷ MLServer | p99 ÷ MLServer |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    order = {name: i for i, name in enumerate(SERVERS)}
    for row in sorted(medians, key=lambda r: (r["in_flight"], order[r["server"]])):
        lines.append(
            f"| {LABELS[row['server']]} | {row['in_flight']} ({row['connections']}x"
            f"{row['streams']}) | {row['req_s']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['cpu_us']:.0f} | {ratio(row.get('req_s_vs_echo'))} "
            f"| {ratio(row.get('cpu_vs_echo'))} | {ratio(row.get('req_s_vs_mlserver'))} "
            f"| {ratio(row.get('p99_vs_mlserver'))} |"
        )
    lines.append(f"\nMedians of {rounds} round(s); every call proven answered OK.")
    return "\n".join(lines)


def build_servers(work: Path, run_dir: Path, args: argparse.Namespace) -> list[Server]:
    pin = ["taskset", "-c", args.server_cpus] if args.server_cpus else []
    servers = []
    for name in SERVERS:
        if name not in args.only:
            continue
        port = free_port()
        if name == "echo":
            response = work / "response.bin"
            response.write_bytes(echo_response(run_dir))
            cmd = [sys.executable, str(BENCH / "serve_echo_server.py"), str(port), str(response)]
            servers.append(Server(name, [*pin, *cmd], port))
        elif name == "mlserver":
            cmd, env = mlserver_setup(work, port, run_dir)
            servers.append(Server(name, [*pin, *cmd], port, env))
        else:
            metrics = free_port()
            # load shedding off: a closed loop that never backs off is the measure here
            flags = ["--metrics-port", str(metrics), "--max-wait-ms", "0"]
            if name in WORKERS:
                flags += ["--workers", str(WORKERS[name])]
            cmd = fleetmind_serve_cmd(run_dir, port, flags)
            servers.append(Server(name, [*pin, *cmd], port, metrics_port=metrics))
    return servers


async def ready(server: Server, proc: subprocess.Popen[bytes]) -> bool:
    """Whether the server says it is ready before it exits or 180 s pass."""
    waiting = asyncio.ensure_future(_wait_ready(server.target))
    while not waiting.done() and proc.poll() is None:
        await asyncio.wait([waiting], timeout=0.5)
    if not waiting.done():
        waiting.cancel()
        return False
    return waiting.exception() is None


def run(servers: list[Server], work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Start every server, prove each answers, then measure them in turn, round by round."""
    body = work / "request.grpc"
    message = request_bytes()
    body.write_bytes(b"\0" + struct.pack(">I", len(message)) + message)
    procs = []
    rows = []
    try:
        for server in servers:
            procs.append(_start(server.cmd, work / f"{server.name}.log", server.env))
        for server, proc in zip(servers, procs, strict=True):
            if not asyncio.run(ready(server, proc)):
                log = (work / f"{server.name}.log").read_text()[-3000:]
                detail = f"{server.name} never became ready (exit {proc.poll()}):\n{log}"
                raise SystemExit(detail)
            probe(server, message)
        for round_no in range(1, args.rounds + 1):
            for level in args.levels:
                for server, proc in zip(servers, procs, strict=True):
                    if proc.poll() is not None:
                        raise SystemExit(f"{server.name} exited ({proc.returncode})")
                    row = measure(server, proc, level, body, work, args) | {"round": round_no}
                    rows.append(row)
                    print(f"round {round_no}/{args.rounds} {describe(row)}", flush=True)
    finally:
        for proc in procs:
            _stop(proc)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per point")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per point")
    parser.add_argument("--rounds", type=int, default=3, help="measure every point this often")
    parser.add_argument(
        "--levels",
        type=parse_level,
        nargs="+",
        default=[Level(1, 1), Level(1, 16), Level(4, 16), Level(8, 64)],
        help="calls in flight: a count (1, 16, 64, 512) or connections x streams (8x64)",
    )
    parser.add_argument("--only", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--server-cpus", help="taskset CPU list for the servers (default: any)")
    parser.add_argument("--load-cpus", help="taskset CPU list for h2load (default: any)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="MLP sizes")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0 or args.warmup <= 0:
        parser.error("--rounds, --seconds and --warmup must be positive")
    if shutil.which("h2load") is None:
        raise SystemExit("h2load not found: install nghttp2-client")
    version = subprocess.run(
        ["h2load", "--version"], capture_output=True, text=True, check=True
    ).stdout
    meta = {
        "cpus": os.cpu_count(),
        "load": os.getloadavg()[0],
        "h2load": version.strip(),
        "torch": torch.__version__,
        "hidden": args.hidden,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "levels": [asdict(level) for level in args.levels],
        "server_cpus": args.server_cpus,
        "load_cpus": args.load_cpus,
    }
    print(" ".join(f"{k}={v}" for k, v in meta.items() if k != "levels"), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_dir = make_policy_run(work, args.hidden)
        rows = run(build_servers(work, run_dir, args), work, args)
    medians = median_rows(rows)
    add_ratios(medians)
    print(f"\nmedians over {args.rounds} round(s):")
    for row in medians:
        print(
            f"{row['server']:<13} {row['in_flight']:>4} in flight {row['req_s']:8.0f} req/s  "
            f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms"
        )
    print("\n" + markdown(medians, args.rounds))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows, "medians": medians}, indent=2))


if __name__ == "__main__":
    main()
