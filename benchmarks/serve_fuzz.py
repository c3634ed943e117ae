"""Fuzz benchmark: adversarial requests against `fleetmind serve` and `fleetmind learner`.

Inference server (``--target serve``, default 100,000 requests): a `fleetmind serve`
process (toy CartPole-shaped policy, 1 MiB message limit) gets well-formed but
adversarial ModelInfer requests (the hypothesis strategies of
tests/integration/test_serve_fuzz.py: wrong datatypes, shapes, names, raw bytes,
NaN, unknown models and outputs) and random bytes sent to every method it
serves: the five other GRPCInferenceService methods, grpc.health.v1 Check and Watch,
and server reflection.

Learner (``--target learner``, default 20,000 requests): a `fleetmind learner`
process (CartPole PPO, 4-step rollouts) gets random bytes sent to every method of
fleetmind.v1.Learner and, on PushTrajectories and Exchange, chunks of one registered
session: unchanged, or with one header field or tensor changed.

Reported: the status of every call by method, the server's resident memory (RSS)
before and after, and whether it is still alive and answering health checks.
Success is 0 UNKNOWN, 0 INTERNAL and 0 crashes (the script exits 1 otherwise).
Requests go 32 at a time over one grpc.aio channel. Drawing 50,000 examples from
hypothesis takes about 5 minutes on a 2-core machine, sending them 1.5.

    PYTHONPATH=src .venv/bin/python benchmarks/serve_fuzz.py [--target serve] [--requests 100000]
    PYTHONPATH=src .venv/bin/python benchmarks/serve_fuzz.py --target learner
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from grpc import aio
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serve_bench import _start, _stop, free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.learner_harness import ROLLOUT  # noqa: E402
from tests.integration.test_serve_fuzz import _encode, requests  # noqa: E402

INFERENCE = "inference.GRPCInferenceService"
INFERENCE_METHODS = (
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
)
HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
LEARNER = "fleetmind.v1.Learner"
IN_FLIGHT = 32
TIMEOUT_S = 10.0
WATCH_TIMEOUT_S = 0.2
"""A Watch whose bytes parse streams until its deadline: DEADLINE_EXCEEDED is its answer."""
BAD = {"UNKNOWN", "INTERNAL"}

Call = tuple[str, str, bytes]
"""(method path, kind: unary | server_stream | client_stream | bidi, request bytes)."""


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def hypothesis_infer_requests(count: int, seed: int) -> list[bytes]:
    """``count`` payloads from test_serve_fuzz's strategies (well-formed or random bytes)."""
    found: list[bytes] = []

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(requests.map(_encode), st.binary(max_size=300)))
    def collect(payload: bytes) -> None:
        found.append(payload)

    random.seed(seed)
    collect()
    return found


def random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice((0, 1, 2, 5, 16, 64, 300)))


def serve_calls(total: int, seed: int) -> Iterator[Call]:
    """Half ModelInfer from hypothesis, half random bytes spread over every method."""
    rng = random.Random(seed)
    infer = hypothesis_infer_requests(total // 2, seed)
    others: list[tuple[str, str]] = [(f"/{INFERENCE}/{m}", "unary") for m in INFERENCE_METHODS]
    others += [(f"/{HEALTH}/Check", "unary"), (f"/{HEALTH}/Watch", "server_stream")]
    others += [(f"/{REFLECTION}", "bidi")]
    for payload in infer:
        yield f"/{INFERENCE}/ModelInfer", "unary", payload
    for i in range(total - len(infer)):
        method, kind = others[i % len(others)]
        yield method, kind, random_bytes(rng)


async def register(target: str) -> Any:
    """A session of the learner at ``target``, as an actor would open it."""
    from fleetmind.rpc.generated import training_pb2 as tpb

    request = tpb.RegisterRequest(actor_id="fuzz", num_envs=2, env_id="CartPole-v1")
    async with aio.insecure_channel(target) as channel:
        reply = await channel.unary_unary(f"/{LEARNER}/Register")(
            request.SerializeToString(), timeout=30
        )
    return tpb.RegisterResponse.FromString(reply)


def learner_calls(total: int, seed: int, session: Any) -> Iterator[Call]:
    """Chunks of a registered session (one thing changed in two of three) and random
    bytes, to every method."""
    from tests.integration.learner_harness import cartpole_chunk

    from fleetmind.core.normalizer import RunningMeanStd
    from fleetmind.rpc.generated import training_pb2 as tpb
    from fleetmind.rpc.training_codec import chunk_pb

    rng = random.Random(seed)
    stats = RunningMeanStd.from_data(np.zeros((3, 4)))
    chunk = cartpole_chunk(
        session.session_id, session.incarnation, version=session.version, obs_stats=stats
    )
    good = chunk_pb(chunk)
    methods = [
        ("Register", "unary"),
        ("Heartbeat", "unary"),
        ("PushTrajectories", "client_stream"),
        ("GetWeights", "server_stream"),
        ("Exchange", "bidi"),
        ("GetStatus", "unary"),
    ]
    for i in range(total):
        method, kind = methods[i % len(methods)]
        path = f"/{LEARNER}/{method}"
        kind_of_payload = rng.randrange(3)
        if method in ("PushTrajectories", "Exchange") and kind_of_payload != 0:
            message = tpb.TrajectoryChunk()
            message.CopyFrom(good)
            if kind_of_payload == 1:
                mutate_chunk(message, rng)
            yield path, kind, message.SerializeToString()
        else:
            yield path, kind, random_bytes(rng)


def mutate_chunk(chunk: Any, rng: random.Random) -> None:
    """Change one thing of a well-formed chunk: a header field or one tensor."""
    choice = rng.randrange(7)
    tensor = rng.choice(chunk.tensors)
    if choice == 0:
        chunk.session_id = rng.choice(["", "unknown", "x" * 300])
    elif choice == 1:
        chunk.incarnation = rng.randrange(-5, 5)
    elif choice == 2:
        chunk.policy_version = rng.randrange(-3, 10**6)
    elif choice == 3:
        chunk.num_steps, chunk.num_envs = rng.randrange(-2, 9), rng.randrange(-2, 9)
    elif choice == 4:
        tensor.raw = random_bytes(rng)
    elif choice == 5:
        del tensor.shape[:]
        tensor.shape.extend(rng.randrange(-2, 9) for _ in range(rng.randrange(4)))
    else:
        tensor.datatype = rng.choice(["FP64", "BYTES", "", "fp32", "INT8", "BOOL"])


async def one_call(channel: aio.Channel, call: Call) -> str:
    method, kind, payload = call
    timeout = WATCH_TIMEOUT_S if method.endswith("/Watch") else TIMEOUT_S
    try:
        if kind == "unary":
            await channel.unary_unary(method)(payload, timeout=timeout)
        elif kind == "server_stream":
            async for _ in channel.unary_stream(method)(payload, timeout=timeout):
                pass
        else:

            async def one() -> AsyncIterator[bytes]:
                yield payload

            if kind == "client_stream":
                await channel.stream_unary(method)(one(), timeout=timeout)
            else:
                async for _ in channel.stream_stream(method)(one(), timeout=timeout):
                    pass
    except aio.AioRpcError as exc:
        return exc.code().name
    return "OK"


async def fire(
    target: str, calls: list[Call], alive: Callable[[], bool]
) -> dict[str, Counter[str]]:
    """Every call, IN_FLIGHT at a time; statuses by method."""
    by_method: dict[str, Counter[str]] = {}
    options = [("grpc.enable_retries", 0), ("grpc.max_receive_message_length", 64 << 20)]
    queue: asyncio.Queue[Call] = asyncio.Queue()
    for call in calls:
        queue.put_nowait(call)
    async with aio.insecure_channel(target, options=options) as channel:

        async def worker() -> None:
            while not queue.empty():
                call = queue.get_nowait()
                status = await one_call(channel, call)
                by_method.setdefault(call[0].rsplit("/", 2)[-1], Counter())[status] += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        print(f"{len(calls)} calls in {time.monotonic() - started:.1f}s; alive={alive()}")
    return by_method


async def health_ok(target: str) -> bool:
    async with aio.insecure_channel(target) as channel:
        check = channel.unary_unary(f"/{HEALTH}/Check")
        reply = await check(health_pb2.HealthCheckRequest().SerializeToString(), timeout=10)
    return health_pb2.HealthCheckResponse.FromString(reply).status == 1


def start_serve(work: Path, port: int) -> object:
    from fleetmind.serve.testing import write_toy_checkpoint

    write_toy_checkpoint(work / "run", seed=2)
    cmd = [
        sys.executable,
        *("-m", "fleetmind", "--log-level", "WARNING", "serve", str(work / "run")),
        *("--host", "127.0.0.1", "--port", str(port), "--model-name", "m"),
        *("--max-message-mib", "1", "--loader", "fleetmind.serve.testing:toy_loader"),
    ]
    return _start(cmd, work / "server.log")


def start_learner(work: Path, port: int) -> object:
    cmd = [
        sys.executable,
        *("-m", "fleetmind", "--log-level", "WARNING", "learner", "CartPole-v1"),
        *("--listen", f"127.0.0.1:{port}", "--run-dir", str(work / "run")),
        *("--steps", "100000000", "--no-progress"),
        # chunks of learner_harness.cartpole_chunk: 4 steps of 2 envs
        *("--ppo.rollout-steps", str(ROLLOUT), "--ppo.minibatch-size", "8"),
    ]
    return _start(cmd, work / "server.log")


async def wait_health(target: str, proc: object, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # type: ignore[attr-defined]
            raise SystemExit("server exited during start-up")
        try:
            if await health_ok(target):
                return
        except aio.AioRpcError:
            pass
        await asyncio.sleep(0.5)
    raise SystemExit(f"{target} not healthy after {seconds}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["serve", "learner"], default="serve")
    parser.add_argument("--requests", type=int, help="default: 100,000 (serve), 20,000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    args = parser.parse_args()
    total = args.requests or (100_000 if args.target == "serve" else 20_000)
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} target={args.target}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port = free_port()
        target = f"127.0.0.1:{port}"
        proc = (start_serve if args.target == "serve" else start_learner)(work, port)
        try:
            asyncio.run(wait_health(target, proc))
            if args.target == "serve":
                calls = list(serve_calls(total, args.seed))
            else:
                calls = list(learner_calls(total, args.seed, asyncio.run(register(target))))
            random.Random(args.seed).shuffle(calls)
            rss_before = rss_kib(proc.pid)  # type: ignore[attr-defined]
            by_method = asyncio.run(fire(target, calls, lambda: proc.poll() is None))  # type: ignore[attr-defined]
            alive = proc.poll() is None and asyncio.run(health_ok(target))  # type: ignore[attr-defined]
            rss_after = rss_kib(proc.pid) if proc.poll() is None else 0  # type: ignore[attr-defined]
        finally:
            _stop(proc)  # type: ignore[arg-type]
            log = (work / "server.log").read_text()
    totals: Counter[str] = sum(by_method.values(), Counter())
    result = {
        "target": args.target,
        "requests": sum(totals.values()),
        "statuses": dict(totals.most_common()),
        "by_method": {m: dict(c.most_common()) for m, c in sorted(by_method.items())},
        "unknown_or_internal": sum(totals[s] for s in BAD),
        "alive_and_serving": alive,
        "rss_mib_before": round(rss_before / 1024, 1),
        "rss_mib_after": round(rss_after / 1024, 1),
        "tracebacks_in_log": log.count("Traceback"),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if result["unknown_or_internal"] or not alive:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
