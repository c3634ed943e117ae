"""Where a ModelInfer call's time goes: fleetmind serve built up stage by stage from a
bare grpc.aio server, each stage on one pinned core, driven by h2load.

serve_capacity.py says how far ``fleetmind serve`` is from a bare grpc.aio server
(issue target: 0.85 of it at 16 and 64 in flight); this says which part of the
handler costs what. Each stage is a server of its own that does everything the
stage before it does, plus one thing:

1. ``echo``: a bare grpc.aio server answering fixed bytes (serve_echo_server.py);
2. ``options``: the same with fleetmind's channel arguments (keepalive, message
   limits, ``max_requests_per_read``: fleetmind.rpc.server.ServerConfig);
3. ``parse``: + the request parsed (fleetmind's lenient parser, protobuf upb);
4. ``decode``: + the observation rows decoded and checked (shape, datatype, finite);
5. ``forward``: + the agent's forward pass and the answer encoded (with its timing
   parameters);
6. ``batcher``: + the rows passed through the DynamicBatcher (forward inline, as the
   server decides for a model this small);
7. ``servicer``: the rows through fleetmind's InferenceServicer.ModelInfer instead
   (its error handling, model lookup, metrics, explanation check, reply size check);
8. ``fleetmind``: ``fleetmind serve`` itself (``--max-wait-ms 0``): + how the server
   is put together (the servicer registered from its descriptor, health service,
   reload task).

The model is the policy of a real PPO run (CartPole-v1, 64x64, serve_bench). Each
server runs on ``--server-cpus`` (one core: its calls per second are then that
core's calls per second, so 1e6 / req/s is the CPU time of a call, gRPC's threads
included) and h2load on ``--load-cpus``; every round runs every stage in turn and the
figures are medians over ``--rounds``.

How every call is proven answered: each server first answers the exact request once
to a grpc.aio client with status OK; then h2load must report every call done and
succeeded with HTTP 200, and at least (5 + the shortest answer) DATA bytes per call
(an error is a trailers-only response without DATA, so a single failed call would
leave the count short).

    PYTHONPATH=src .venv/bin/python benchmarks/serve_breakdown.py \\
        [--streams 16] [--seconds 4] [--rounds 3] [--server-cpus 0 --load-cpus 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from serve_bench import (
    MODEL,
    _wait_ready,
    echo_response,
    fleetmind_serve_cmd,
    free_port,
    make_policy_run,
    request_bytes,
)
from serve_capacity import (
    TIMING_PARAMETERS,
    Level,
    Server,
    _probe,
    h2load_cmd,
    run_h2load,
    varint_size,
)
from serve_echo_server import serve_bytes

STAGES = ("echo", "options", "parse", "decode", "forward", "batcher", "servicer", "fleetmind")
"""In the order each adds one thing to the one before."""


# --- the stage servers (run as ``serve_breakdown.py --stage NAME --port P --run DIR``) ---


async def servicer_handler(run_dir: Path) -> Any:
    """ModelInfer through the servicer of a real (not listening) InferenceServer."""
    from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
    from fleetmind.rpc.handlers import lenient_parser
    from fleetmind.serve.config import ServeConfig
    from fleetmind.serve.server import InferenceServer

    parse = lenient_parser(pb.ModelInferRequest.DESCRIPTOR)
    config = ServeConfig(model_name=MODEL, max_wait_ms=0, reload_interval_s=None)
    server = InferenceServer(run_dir, config)
    await server.repository.refresh()
    servicer = server.servicer
    servicer.accepting = True

    async def serviced(request: bytes, context: Any) -> bytes:
        reply: bytes = await servicer.ModelInfer(parse(request), context)
        return reply

    return serviced


def stage_handler(stage: str, run_dir: Path) -> Any:
    """The ModelInfer handler (bytes in, bytes out) of ``stage``."""
    from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
    from fleetmind.rpc.handlers import lenient_parser
    from fleetmind.serve.batcher import BatchPolicy
    from fleetmind.serve.model import agent_forward, build_served_model
    from fleetmind.serve.protocol import decode_observations, requested_outputs
    from fleetmind.serve.repository import default_loader
    from fleetmind.serve.response import timing_parameters

    answer = echo_response(run_dir)
    parse = lenient_parser(pb.ModelInferRequest.DESCRIPTOR)
    model = build_served_model(
        MODEL, "1", default_loader(run_dir), run_dir, policy=BatchPolicy(in_thread=None)
    )
    forward = agent_forward(model.loaded.agent)
    timing = timing_parameters(1e-4, 1e-4)

    async def fixed(request: bytes, context: Any) -> bytes:
        return answer

    async def parsed(request: bytes, context: Any) -> bytes:
        parse(request)
        return answer

    async def decoded(request: bytes, context: Any) -> bytes:
        decode_observations(parse(request), model)  # type: ignore[arg-type]
        return answer

    async def forwarded(request: bytes, context: Any) -> bytes:
        message: Any = parse(request)
        outputs = forward(decode_observations(message, model))
        return model.encoder.encode(message.id, requested_outputs(message, model), outputs, timing)

    async def batched(request: bytes, context: Any) -> bytes:
        message: Any = parse(request)
        timed = await model.batcher.submit_timed(decode_observations(message, model))
        names = requested_outputs(message, model)
        params = timing_parameters(timed.queue_s, timed.compute_s)
        return model.encoder.encode(message.id, names, timed.outputs, params)

    if stage == "batcher":
        model.batcher.start()
    handlers = {
        "echo": fixed,
        "options": fixed,
        "parse": parsed,
        "decode": decoded,
        "forward": forwarded,
        "batcher": batched,
    }
    return handlers[stage]


async def serve_stage(stage: str, port: int, run_dir: Path) -> None:
    from fleetmind.rpc.server import ServerConfig

    options = [("grpc.so_reuseport", 0)] if stage == "echo" else ServerConfig().options()
    if stage == "servicer":
        infer = await servicer_handler(run_dir)
    else:
        infer = stage_handler(stage, run_dir)
    await serve_bytes(port, infer, options)


# --- the driver -------------------------------------------------------------------------


def stage_cmd(stage: str, port: int, run_dir: Path) -> list[str]:
    if stage == "fleetmind":
        return fleetmind_serve_cmd(run_dir, port, ["--max-wait-ms", "0"])
    script = str(Path(__file__).resolve())
    return [sys.executable, script, "--stage", stage, "--port", str(port), "--run", str(run_dir)]


def shortest_answer(server: Server, payload: bytes) -> int:
    """One call by a real gRPC client (status OK, outputs present); the shortest size
    its answer can have (timing parameters are varints of varying length)."""
    from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb

    answer = asyncio.run(_probe(server.target, payload))
    response = pb.ModelInferResponse.FromString(answer)
    if not response.outputs:
        raise SystemExit(f"{server.name}: ModelInfer answered OK without outputs")
    timings = [
        value.int64_param
        for key, value in response.parameters.items()
        if key in TIMING_PARAMETERS and value.WhichOneof("parameter_choice") == "int64_param"
    ]
    return len(answer) - sum(varint_size(v) - 1 for v in timings)


def measure_stage(
    stage: str, run_dir: Path, body: Path, payload: bytes, args: argparse.Namespace
) -> float:
    """Answered calls per second of ``stage``'s server, every call proven answered."""
    port = free_port()
    pin = ["taskset", "-c", args.server_cpus] if args.server_cpus else []
    load_pin = ["taskset", "-c", args.load_cpus] if args.load_cpus else []
    proc = subprocess.Popen(
        [*pin, *stage_cmd(stage, port, run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        server = Server(stage, [], port)
        try:
            asyncio.run(_wait_ready(server.target, timeout=120))
        except Exception as exc:
            _, err = proc.communicate(timeout=5) if proc.poll() is not None else (b"", b"")
            raise SystemExit(f"{stage}: server not ready ({exc}) {err.decode()[-500:]}") from None
        shortest = shortest_answer(server, payload)
        level = Level(1, args.streams)
        warm = h2load_cmd(server, level, body, load_pin, ["-D", str(args.warmup)])
        run_h2load(warm, args.warmup + 60)
        cmd = h2load_cmd(server, level, body, load_pin, ["-D", str(args.seconds)])
        report = run_h2load(cmd, args.seconds + 60)
        if not (report.done == report.succeeded == report.status_2xx > 0) or (
            report.failed or report.errored or report.timeout or report.status_other
        ):
            raise SystemExit(f"{stage}: not every call was answered: {report}")
        least = report.done * (5 + shortest)
        if report.data_bytes < least:
            raise SystemExit(
                f"{stage}: {report.data_bytes} DATA bytes for {report.done} calls, "
                f"under the {least} that answers to all of them take: some calls failed"
            )
        return report.req_s
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def table(medians: dict[str, float], rounds: int, streams: int) -> str:
    base = 1e6 / medians["echo"]
    total = 1e6 / medians["fleetmind"] - base
    lines = [
        f"| stage ({streams} in flight, one core) | req/s | µs per call | added µs | "
        "share of the gap | / echo |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    previous = base
    for stage in STAGES:
        per_call = 1e6 / medians[stage]
        added = per_call - previous
        share = f"{added / total:.0%}" if stage != "echo" and total > 0 else ""
        lines.append(
            f"| {stage} | {medians[stage]:,.0f} | {per_call:.0f} | "
            f"{'' if stage == 'echo' else f'{added:+.0f}'} | {share} | "
            f"{medians[stage] / medians['echo']:.2f} |"
        )
        previous = per_call
    lines.append("")
    lines.append(f"Medians of {rounds} round(s); every call proven answered.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=STAGES[:-1], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--streams", type=int, default=16, help="calls in flight (1 connection)")
    parser.add_argument("--seconds", type=int, default=4, help="measured seconds per point")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds per point")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--server-cpus", default="0", help="taskset list for the servers")
    parser.add_argument("--load-cpus", default="1", help="taskset list for h2load")
    args = parser.parse_args()
    if args.stage is not None:
        if args.port is None or args.run is None:
            parser.error("--stage needs --port and --run")
        asyncio.run(serve_stage(args.stage, args.port, args.run))
        return
    if min(args.streams, args.rounds, args.seconds, args.warmup) < 1:
        parser.error("--streams, --rounds, --seconds and --warmup must be >= 1")
    with tempfile.TemporaryDirectory(prefix="fleetmind-breakdown-") as folder:
        work = Path(folder)
        run_dir = make_policy_run(work, [64, 64])
        payload = request_bytes()
        body = work / "body.bin"
        body.write_bytes(b"\x00" + struct.pack(">I", len(payload)) + payload)
        results: dict[str, list[float]] = {stage: [] for stage in STAGES}
        start = time.monotonic()
        for round_no in range(1, args.rounds + 1):
            for stage in STAGES:
                req_s = measure_stage(stage, run_dir, body, payload, args)
                results[stage].append(req_s)
                print(f"round {round_no}/{args.rounds} {stage}: {req_s:,.0f} req/s", flush=True)
        medians = {stage: statistics.median(values) for stage, values in results.items()}
        print()
        print(table(medians, args.rounds, args.streams))
        print(f"({time.monotonic() - start:.0f} s)")


if __name__ == "__main__":
    main()
