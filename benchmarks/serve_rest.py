"""REST vs MLServer, gRPC beside an idle HTTP port, and the cost of an explanation.

Three questions about ``fleetmind serve``, each on the policy of a real PPO run
(CartPole-v1, see serve_bench.make_policy_run), with serve_capacity.py's machinery
(h2load, its per-request log, the proofs that every call was answered):

1. **REST**: the same KServe V2 JSON body (one observation row, ``"data"`` as a JSON
   list) sent as ``POST /v2/models/policy/infer`` to ``fleetmind serve --http-port``
   and to MLServer 1.7.1's REST port (the runtime and adaptive batching of
   serve_capacity's ``mlserver``), by h2load over HTTP/1.1 (``--h1``: c keep-alive
   connections, one request at a time on each) at ``--rest-levels`` calls in flight
   (1, 16, 64); req/s, p50, p99 and fleetmind ÷ MLServer. The issue's target at 64:
   at least 2x MLServer's req/s and at most 0.5x its p99.
2. **gRPC beside an idle HTTP port**: ModelInfer through h2load exactly as
   serve_capacity measures it (its ``measure``), at ``--grpc-levels`` (16 as 1x16,
   64 as 4x16), to ``fleetmind serve`` without ``--http-port`` and to the server of
   question 1, whose HTTP port is open and idle meanwhile; the ratio with ÷ without.
   The target: no worse (1.0 within the noise).
3. **The cost of an explanation**, on the server without ``--http-port``, by a
   grpc.aio client in this process sending pre-serialised requests: (a) the latency
   of ``--explain-calls`` sequential calls with ``explain`` set and as many plain
   ones (alternating), and the same at ``--explain-concurrency`` callers; (b) the
   latency of plain calls (1 and ``--explain-concurrency`` closed-loop callers, for
   ``--seconds``) alone and while ``--explain-background`` more callers, another client
   process with its own connection, keep asking for explanations. Explanations must
   never slow plain calls: on a 2-core machine the integral and the plain calls share
   the CPU, so (b) says how far that holds.

Every server is started once; each round measures every point in turn (servers not
being driven are idle; the two servers of a pair swap turns every second round),
and the figures are medians over ``--rounds``. CPU per call (the server process's
user + system time over the measured run) moves less with other load on a shared
machine than req/s and latency do.

How calls are proven answered (a failed check ends the run, SystemExit):

* REST: before measuring, one POST by urllib must be answered 200 with the outputs
  action, action_probs and value; in each measured run h2load must report n calls
  done and succeeded, n 2xx, none failed, a log of n rows all HTTP 200, and reply
  bodies of the probe's size on average (within ``BODY_SLACK`` bytes: a float's
  shortest repr may take a digit more or less when the batch differs); for fleetmind
  its ``fleetmind_inference_requests_total`` must grow by exactly n OK (REST calls
  count there too) and nothing else.
* gRPC: serve_capacity's proofs (status OK once by a real client, exact DATA bytes,
  the server's counter).
* Explanations: every call is awaited by a gRPC client, which raises on any status
  but OK; an explained answer must carry ``attributions``, a plain one must not.

    PYTHONPATH=src .venv/bin/python benchmarks/serve_rest.py \
        [--seconds 5] [--rounds 3] [--warmup 2] [--rest-levels 1 16 64] \
        [--grpc-levels 16 64] [--explain-calls 200] [--explain-concurrency 4] \
        [--server-cpus 0 --load-cpus 1] [--only explain] [--json rest.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import shutil
import struct
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from grpc import aio

from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.serve.explainer import ATTRIBUTIONS, EXPLAIN_PARAMETER
from serve_bench import (
    METHOD,
    MODEL,
    _start,
    _stop,
    fleetmind_serve_cmd,
    free_port,
    make_policy_run,
    mlserver_setup,
    request_bytes,
)
from serve_capacity import (
    Level,
    Server,
    check_counter,
    measure,
    median_rows,
    parse_level,
    probe,
    ready,
    run_h2load,
    settled_counts,
    tree_cpu_seconds,
    window,
)

OBSERVATION = np.random.default_rng(0).normal(size=(1, 4)).astype("<f4")
"""The observation every call sends (serve_bench.request_bytes sends the same row)."""
OUTPUTS = {"action", "action_probs", "value"}
BODY_SLACK = 4
"""Bytes per reply the REST bodies may differ from the probe's on average."""
WARMUP_TRIES = 3
"""REST warm-ups (of ``--warmup`` seconds) a server may take to answer its first call."""
WARMUP_CALLS = 20
"""Calls of each kind before the explanation latencies are recorded."""


@dataclass
class HttpServer(Server):
    """A server with a REST port beside its gRPC one."""

    http_port: int = 0
    body_bytes: int = 0  # size of its REST reply to the benchmark body

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v2/models/{MODEL}/infer"


def rest_body() -> bytes:
    """The KServe V2 JSON request: one observation row, ``data`` as a JSON list."""
    tensor = {"name": "observation", "shape": [1, 4], "datatype": "FP32"}
    return json.dumps({"inputs": [tensor | {"data": OBSERVATION[0].tolist()}]}).encode()


def rest_probe(server: HttpServer, body: bytes) -> None:
    """One POST by urllib: 200 and a JSON reply with the policy's outputs."""
    request = urllib.request.Request(
        server.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            answer = reply.read()
    except OSError as exc:
        raise SystemExit(f"{server.name}: REST infer at {server.url} failed: {exc}") from None
    names = {output["name"] for output in json.loads(answer).get("outputs", [])}
    if names != OUTPUTS:
        raise SystemExit(f"{server.name}: REST answered outputs {names}, not {OUTPUTS}: {answer!r}")
    server.body_bytes = len(answer)
    print(f"{server.name}: REST 200, reply {len(answer)} bytes ({', '.join(sorted(names))})")


def rest_cmd(
    server: HttpServer, level: Level, body: Path, pin: list[str], run: list[str]
) -> list[str]:
    """h2load POSTing ``body`` over HTTP/1.1, one request at a time per connection."""
    return [
        *pin,
        "h2load",
        "--h1",
        *("-H", "Content-Type: application/json", "-d", str(body)),
        *("-c", str(level.in_flight), "-m", "1", *run),
        server.url,
    ]


def measure_rest(
    server: HttpServer,
    proc: subprocess.Popen[bytes],
    level: Level,
    body: Path,
    work: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One REST point: warm-up, then a fixed number of calls, each proven answered."""
    pin = ["taskset", "-c", args.load_cpus] if args.load_cpus else []
    c = level.in_flight
    for _ in range(WARMUP_TRIES):  # a slow server may answer nothing in a short warm-up
        warm = run_h2load(
            rest_cmd(server, level, body, pin, ["-D", f"{round(args.warmup * 1000)}ms"]),
            timeout=args.warmup + 60,
        )
        if warm.failed or warm.status_2xx != warm.succeeded:
            raise SystemExit(f"{server.name} REST at {c}: warm-up calls failed: {warm}")
        if warm.succeeded:
            break
    else:
        raise SystemExit(f"{server.name} REST at {c}: no call answered in {WARMUP_TRIES} warm-ups")
    calls = c * max(math.ceil(warm.succeeded / args.warmup * args.seconds / c), 8)
    log = work / f"h2load-rest-{server.name}-{c}.log"
    log.unlink(missing_ok=True)  # h2load appends
    before = settled_counts(server)
    cpu_before = tree_cpu_seconds(proc.pid)
    report = run_h2load(
        rest_cmd(server, level, body, pin, ["-n", str(calls), "--log-file", str(log)]),
        timeout=60 + 20 * args.seconds,
    )
    cpu_us = (tree_cpu_seconds(proc.pid) - cpu_before) / calls * 1e6
    per_call = report.data_bytes / calls
    proven = (
        report.total == report.started == report.done == report.succeeded == calls
        and report.failed == report.errored == report.timeout == 0
        and report.status_2xx == calls
        and report.status_other == 0
        and abs(per_call - server.body_bytes) <= BODY_SLACK
    )
    if not proven:
        raise SystemExit(
            f"{server.name} REST at {c}: not every call was answered: sent {calls}, "
            f"expected replies of about {server.body_bytes} bytes; h2load reported {report}"
        )
    counted = check_counter(server, before, calls)
    req_s, latency_ms = window(log, calls, c)
    return {
        "server": server.name,
        "in_flight": c,
        "connections": c,
        "streams": 1,
        "calls": calls,
        "req_s": req_s,
        "p50_ms": float(np.percentile(latency_ms, 50)),
        "p99_ms": float(np.percentile(latency_ms, 99)),
        "cpu_us": cpu_us,
        "body_bytes_per_call": per_call,
        "server_counted_ok": counted,
    }


# --- explanations ---------------------------------------------------------------------


def explained_request() -> bytes:
    """serve_bench's request with the ``explain`` parameter set."""
    request = pb.ModelInferRequest.FromString(request_bytes())
    request.parameters[EXPLAIN_PARAMETER].bool_param = True
    return request.SerializeToString()


class Caller:
    """ModelInfer over one grpc.aio channel; any status but OK ends the run."""

    def __init__(self, channel: aio.Channel) -> None:
        self._call: aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)

    async def timed(self, payload: bytes) -> float:
        """One call's latency in ms."""
        start = time.perf_counter()
        try:
            await self._call(payload, timeout=30)
        except aio.AioRpcError as exc:
            raise SystemExit(f"ModelInfer failed: {exc.code().name} {exc.details()}") from None
        return (time.perf_counter() - start) * 1e3

    async def outputs(self, payload: bytes) -> set[str]:
        reply = pb.ModelInferResponse.FromString(await self._call(payload, timeout=60))
        return {output.name for output in reply.outputs}


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "calls": len(latencies),
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
    }


async def explain_latency(target: str, calls: int, callers: int) -> list[dict[str, Any]]:
    """Plain and explained latency: alternating sequential calls, then ``callers`` at once."""
    plain, explained = request_bytes(), explained_request()
    async with aio.insecure_channel(target) as channel:
        caller = Caller(channel)
        if ATTRIBUTIONS not in await caller.outputs(explained):
            raise SystemExit(f"{target}: an explained call was answered without {ATTRIBUTIONS}")
        if ATTRIBUTIONS in await caller.outputs(plain):
            raise SystemExit(f"{target}: a plain call was answered with {ATTRIBUTIONS}")
        for _ in range(WARMUP_CALLS):
            await caller.timed(plain)
            await caller.timed(explained)
        times: dict[str, list[float]] = {"plain": [], "explained": []}
        for _ in range(calls):
            times["plain"].append(await caller.timed(plain))
            times["explained"].append(await caller.timed(explained))
        rows = [{"callers": 1, "kind": kind, **summary(t)} for kind, t in times.items()]
        share = max(calls // callers, 8)
        for kind, payload in (("plain", plain), ("explained", explained)):

            async def loop(payload: bytes = payload) -> list[float]:
                return [await caller.timed(payload) for _ in range(share)]

            done = await asyncio.gather(*(loop() for _ in range(callers)))
            rows.append(
                {"callers": callers, "kind": kind, **summary([t for times in done for t in times])}
            )
    return rows


async def _explain_forever(target: str, callers: int, started: Any, stop: Any, count: Any) -> None:
    explained = explained_request()
    async with aio.insecure_channel(target) as channel:
        caller = Caller(channel)

        async def loop() -> None:
            while not stop.is_set():
                await caller.timed(explained)
                with count.get_lock():
                    count.value += 1

        await caller.timed(explained)
        started.set()
        await asyncio.gather(*(loop() for _ in range(callers)))


def explain_forever(target: str, callers: int, started: Any, stop: Any, count: Any) -> None:
    """A separate client process: ``callers`` closed-loop callers asking for explanations
    until ``stop`` is set, counting answers in ``count``."""
    asyncio.run(_explain_forever(target, callers, started, stop, count))


async def plain_beside_explanations(
    target: str, callers: int, background: int, seconds: float
) -> dict[str, Any]:
    """Plain latency of ``callers`` closed-loop callers for ``seconds``, while
    ``background`` callers keep asking for explanations (none: plain alone).

    The explanation callers are another client: a process of their own with its own
    connection, on the same CPUs as this one. Sharing this process's event loop, their
    answers would delay the timing of the plain calls here, a cost of the client and
    not of the server.
    """
    plain = request_bytes()
    ctx = multiprocessing.get_context("spawn")
    started, stop, count = ctx.Event(), ctx.Event(), ctx.Value("q", 0)
    other = None
    if background:
        other = ctx.Process(
            target=explain_forever, args=(target, background, started, stop, count), daemon=True
        )
        other.start()
        if not await asyncio.to_thread(started.wait, 120):
            other.kill()
            raise SystemExit(f"{target}: the explanation callers got no answer in 120 s")
    try:
        async with aio.insecure_channel(target) as channel:
            caller = Caller(channel)

            async def plain_loop(until: float) -> list[float]:
                times = []
                while time.monotonic() < until:
                    times.append(await caller.timed(plain))
                return times

            await plain_loop(time.monotonic() + min(1.0, seconds / 4))  # warm-up, both running
            start, before = time.monotonic(), count.value
            done = await asyncio.gather(*(plain_loop(start + seconds) for _ in range(callers)))
            elapsed, explained_calls = time.monotonic() - start, count.value - before
    finally:
        stop.set()
        if other is not None:
            other.join(60)
            if other.exitcode != 0:
                raise SystemExit(f"{target}: the explanation callers failed ({other.exitcode})")
    latencies = [t for times in done for t in times]
    return {
        "callers": callers,
        "background": background,
        **summary(latencies),
        "req_s": len(latencies) / elapsed,
        "explanations_s": explained_calls / elapsed,
    }


def explain_round(server: Server, args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Question 3 once: explanation latency, then plain latency with and without them."""
    latency = asyncio.run(
        explain_latency(server.target, args.explain_calls, args.explain_concurrency)
    )
    beside = []
    for callers in sorted({1, args.explain_concurrency}):
        for background in (0, args.explain_background):
            beside.append(
                asyncio.run(
                    plain_beside_explanations(server.target, callers, background, args.seconds)
                )
            )
    return {"latency": latency, "beside": beside}


# --- running and reporting ------------------------------------------------------------


def build_servers(work: Path, run_dir: Path, args: argparse.Namespace) -> list[HttpServer]:
    """fleetmind without --http-port, fleetmind with it, MLServer (REST and gRPC)."""
    pin = ["taskset", "-c", args.server_cpus] if args.server_cpus else []
    servers = []
    for name, http in (("fleetmind", False), ("fleetmind-http", True)):
        port, metrics, http_port = free_port(), free_port(), free_port()
        flags = ["--metrics-port", str(metrics)] + (["--http-port", str(http_port)] if http else [])
        cmd = [*pin, *fleetmind_serve_cmd(run_dir, port, flags)]
        servers.append(HttpServer(name, cmd, port, metrics_port=metrics, http_port=http_port))
    if args.only == "explain":
        return servers[:1]
    port = free_port()
    cmd, env = mlserver_setup(work, port, run_dir)
    http_port = int(json.loads((work / "mlserver" / "settings.json").read_text())["http_port"])
    servers.append(HttpServer("mlserver", [*pin, *cmd], port, env, http_port=http_port))
    return servers


def run(servers: list[HttpServer], work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Start every server, prove each answers, then measure round by round."""
    grpc_body, rest_file = work / "request.grpc", work / "request.json"
    message, body = request_bytes(), rest_body()
    grpc_body.write_bytes(b"\0" + struct.pack(">I", len(message)) + message)
    rest_file.write_bytes(body)
    by_name = {server.name: server for server in servers}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    results: dict[str, list[dict[str, Any]]] = {"rest": [], "grpc": [], "explain": []}
    try:
        for server in servers:
            procs[server.name] = _start(server.cmd, work / f"{server.name}.log", server.env)
        for server in servers:
            if not asyncio.run(ready(server, procs[server.name])):
                log = (work / f"{server.name}.log").read_text()[-3000:]
                raise SystemExit(f"{server.name} never became ready:\n{log}")
            probe(server, message)
        if args.only is None:
            for name in ("fleetmind-http", "mlserver"):
                rest_probe(by_name[name], body)
        for round_no in range(1, args.rounds + 1):
            tag = f"round {round_no}/{args.rounds}"
            if args.only is None:
                measure_pairs(by_name, procs, (rest_file, grpc_body), work, args, results, round_no)
            alive("fleetmind", procs)
            explained = explain_round(by_name["fleetmind"], args)
            for part, rows in explained.items():
                for row in rows:
                    results["explain"].append(row | {"part": part, "round": round_no})
                    print(f"{tag} explain {part} {row}", flush=True)
    finally:
        for proc in procs.values():
            _stop(proc)
    return results


def measure_pairs(
    by_name: dict[str, HttpServer],
    procs: dict[str, subprocess.Popen[bytes]],
    bodies: tuple[Path, Path],
    work: Path,
    args: argparse.Namespace,
    results: dict[str, list[dict[str, Any]]],
    round_no: int,
) -> None:
    """Questions 1 and 2 once: REST against MLServer, gRPC with and without HTTP."""
    rest_file, grpc_body = bodies
    tag = f"round {round_no}/{args.rounds}"
    for level in (Level(n, 1) for n in args.rest_levels):
        for name in turns(("fleetmind-http", "mlserver"), round_no):
            alive(name, procs)
            row = measure_rest(by_name[name], procs[name], level, rest_file, work, args)
            results["rest"].append(row | {"round": round_no})
            print(f"{tag} REST {describe(row)}", flush=True)
    for level in args.grpc_levels:
        for name in turns(("fleetmind", "fleetmind-http"), round_no):
            alive(name, procs)
            row = measure(by_name[name], procs[name], level, grpc_body, work, args)
            results["grpc"].append(row | {"round": round_no})
            print(f"{tag} gRPC {describe(row)}", flush=True)


def turns(names: tuple[str, str], round_no: int) -> tuple[str, ...]:
    """The pair in turn, the other way round every second round (the machine drifts)."""
    return names if round_no % 2 else names[::-1]


def alive(name: str, procs: dict[str, subprocess.Popen[bytes]]) -> None:
    if procs[name].poll() is not None:
        raise SystemExit(f"{name} exited ({procs[name].returncode})")


def describe(row: dict[str, Any]) -> str:
    return (
        f"{row['server']:<14} {row['in_flight']:>3} in flight {row['req_s']:7.0f} req/s  "
        f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  "
        f"CPU {row['cpu_us']:5.0f} us/call  [{row['calls']} calls all 2xx/OK]"
    )


def pair_table(medians: list[dict[str, Any]], a: str, b: str, labels: tuple[str, str]) -> str:
    """Per level: each server's req/s, p50, p99 and CPU per call (the server process's,
    the figure least moved by other load), then a ÷ b of req/s, p99 and CPU."""
    at = {(row["server"], row["in_flight"]): row for row in medians}
    figures = ("req/s", "p50 ms", "p99 ms", "CPU µs/call")
    head = " | ".join(f"{label} {k}" for label in labels for k in figures)
    lines = [f"| in flight | {head} | req/s ratio | p99 ratio | CPU ratio |", "|--:" * 12 + "|"]
    for level in sorted({row["in_flight"] for row in medians}):
        x, y = at.get((a, level)), at.get((b, level))
        if x is None or y is None:
            continue
        cells = " | ".join(
            f"{r['req_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_us']:.0f}"
            for r in (x, y)
        )
        ratios = " | ".join(f"{x[k] / y[k]:.2f}" for k in ("req_s", "p99_ms", "cpu_us"))
        lines.append(f"| {level} | {cells} | {ratios} |")
    return "\n".join(lines)


def explain_medians(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Medians over rounds: latency per (callers, kind), beside per (callers, background)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for part, keys in (("latency", ("callers", "kind")), ("beside", ("callers", "background"))):
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for row in rows:
            if row["part"] == part:
                groups.setdefault(tuple(row[k] for k in keys), []).append(row)
        out[part] = [
            {
                **dict(zip(keys, key, strict=True)),
                "rounds": len(group),
                **{
                    k: float(np.median([r[k] for r in group]))
                    for k in group[0]
                    if k.endswith(("_ms", "_s"))
                },
            }
            for key, group in groups.items()
        ]
    return out


def explain_tables(medians: dict[str, list[dict[str, Any]]]) -> str:
    at = {(r["callers"], r["kind"]): r for r in medians["latency"]}
    lines = [
        "| callers | plain p50 ms | plain p99 ms | explained p50 ms | explained p99 ms "
        "| explained ÷ plain p50 | added p50 ms |",
        "|--:" * 7 + "|",
    ]
    for callers in sorted({r["callers"] for r in medians["latency"]}):
        p, e = at[(callers, "plain")], at[(callers, "explained")]
        lines.append(
            f"| {callers} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} | {e['p50_ms']:.2f} "
            f"| {e['p99_ms']:.2f} | {e['p50_ms'] / p['p50_ms']:.1f} "
            f"| {e['p50_ms'] - p['p50_ms']:.2f} |"
        )
    beside = {(r["callers"], r["background"]): r for r in medians["beside"]}
    lines += [
        "",
        "| plain callers | alone p50 ms | alone p99 ms | beside explanations p50 ms "
        "| beside p99 ms | p50 ratio | p99 ratio | plain req/s ratio | explanations/s |",
        "|--:" * 9 + "|",
    ]
    for callers, background in sorted(beside):
        if background == 0 or (callers, 0) not in beside:
            continue
        a, b = beside[(callers, 0)], beside[(callers, background)]
        lines.append(
            f"| {callers} | {a['p50_ms']:.2f} | {a['p99_ms']:.2f} | {b['p50_ms']:.2f} "
            f"| {b['p99_ms']:.2f} | {b['p50_ms'] / a['p50_ms']:.2f} "
            f"| {b['p99_ms'] / a['p99_ms']:.2f} | {b['req_s'] / a['req_s']:.2f} "
            f"| {b['explanations_s']:.1f} |"
        )
    return "\n".join(lines)


def report(results: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    medians = {
        "rest": median_rows(results["rest"]),
        "grpc": median_rows(results["grpc"]),
        **explain_medians(results["explain"]),
    }
    if args.only is None:
        print("\n### REST: fleetmind serve --http-port vs MLServer 1.7.1 (h2load --h1)\n")
        print(pair_table(medians["rest"], "fleetmind-http", "mlserver", ("fleetmind", "MLServer")))
        print("\nratios: fleetmind ÷ MLServer (target at 64: req/s >= 2, p99 <= 0.5)")
        print("\n### gRPC ModelInfer (h2load): HTTP port open and idle vs no HTTP port\n")
        print(pair_table(medians["grpc"], "fleetmind-http", "fleetmind", ("with", "without")))
        print("\nratios: with ÷ without (target: req/s >= 1 within noise)")
    print("\n### Explanations (grpc.aio client, server without --http-port)\n")
    print(explain_tables(medians))
    print(
        f"\nMedians of {args.rounds} round(s); every call proven answered "
        f"(explanations: {args.explain_background} background caller(s))."
    )
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per point")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per point")
    parser.add_argument("--rounds", type=int, default=3, help="measure every point this often")
    parser.add_argument(
        "--rest-levels",
        type=int,
        nargs="+",
        default=[1, 16, 64],
        help="REST calls in flight (HTTP/1.1 connections, one request at a time on each)",
    )
    parser.add_argument(
        "--grpc-levels",
        type=parse_level,
        nargs="+",
        default=[Level(1, 16), Level(4, 16)],
        help="gRPC calls in flight: a count or connections x streams",
    )
    parser.add_argument(
        "--explain-calls", type=int, default=200, help="sequential calls of each kind"
    )
    parser.add_argument("--explain-concurrency", type=int, default=4, help="callers at once")
    parser.add_argument(
        "--explain-background", type=int, default=1, help="callers asking for explanations"
    )
    parser.add_argument(
        "--only",
        choices=["explain"],
        help="measure only this question (explain: question 3, no MLServer, no h2load)",
    )
    parser.add_argument("--server-cpus", help="taskset CPU list for the servers (default: any)")
    parser.add_argument("--load-cpus", help="taskset CPU list for h2load (default: any)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="MLP sizes")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0 or args.warmup <= 0:
        parser.error("--rounds, --seconds and --warmup must be positive")
    if min(args.explain_calls, args.explain_concurrency, args.explain_background) < 1:
        parser.error("--explain-calls, --explain-concurrency and --explain-background must be >= 1")
    if args.only is None and shutil.which("h2load") is None:
        raise SystemExit("h2load not found: install nghttp2-client")
    version = (
        subprocess.run(
            ["h2load", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if shutil.which("h2load")
        else None
    )
    meta = {
        "only": args.only,
        "cpus": os.cpu_count(),
        "load": os.getloadavg()[0],
        "h2load": version,
        "torch": torch.__version__,
        "hidden": args.hidden,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "rounds": args.rounds,
    }
    print(" ".join(f"{k}={v}" for k, v in meta.items()), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_dir = make_policy_run(work, args.hidden)
        results = run(build_servers(work, run_dir, args), work, args)
    medians = report(results, args)
    if args.json:
        document = {"meta": meta, "rows": results, "medians": medians}
        args.json.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
