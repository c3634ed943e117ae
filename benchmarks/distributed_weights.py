"""Weight broadcast: deliver a ~100 MB model to 8 actors over gRPC.

Baseline, in the same script: one copy of the same bytes through a plain loopback
TCP socket. Also compares TCP loopback with a ``unix:`` socket for the learner.

    .venv/bin/python benchmarks/distributed_weights.py [--mb 100] [--actors 8]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import tempfile
import threading
import time
from typing import Any

import grpc
import torch
from torch import nn

from fleetmind.algos.registry import get_algorithm
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.generated import training_pb2_grpc as pb_grpc
from fleetmind.rpc.learner_service import SERVICE, LearnerServicer
from fleetmind.rpc.server import ServerConfig, create_server
from fleetmind.rpc.weights_codec import WeightAssembler
from fleetmind.runtime.chunk_format import ChunkFormat
from fleetmind.runtime.dist_config import DistConfig
from fleetmind.runtime.learner.core import LearnerCore
from fleetmind.runtime.learner.endpoint import CoreEndpoint
from fleetmind.runtime.learner.weight_store import WeightStore, load_weights
from fleetmind.runtime.parts import build_parts

MIB = 1024 * 1024


class _Holder:
    version = 1


def loopback_copy_s(blob: bytes) -> float:
    """Seconds to push ``blob`` once through a loopback TCP connection."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    received = bytearray(len(blob))

    def sink() -> None:
        conn, _ = server.accept()
        view, got = memoryview(received), 0
        while got < len(blob):
            got += conn.recv_into(view[got:])
        conn.close()

    t = threading.Thread(target=sink)
    t.start()
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(blob)
    t.join()
    server.close()
    return time.perf_counter() - start


def fetch(target: str, model: nn.Module) -> float:
    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 * MIB)])
    stub = pb_grpc.LearnerStub(channel)
    name = f"bench-{os.getpid()}"
    session = stub.Register(pb.RegisterRequest(actor_id=name, num_envs=1), timeout=60)
    start = time.perf_counter()
    request = pb.GetWeightsRequest(
        session_id=session.session_id,
        incarnation=session.incarnation,
        session_secret=session.session_secret,
        have_version=-1,
    )
    assembler = WeightAssembler()
    for chunk in stub.GetWeights(request, timeout=600):
        assembler.add(chunk)
    load_weights(model, assembler.weights())
    channel.close()
    return time.perf_counter() - start


def _chunk_format() -> ChunkFormat:
    """A single agent's chunk format (the model served is the benchmark's own)."""
    spec = get_algorithm("ppo")
    parts = build_parts("CartPole-v1", spec, spec.config_cls(), envs=1, seed=0,
                        normalize_obs=False)  # fmt: skip
    parts.env.close()
    return ChunkFormat(parts, 1)


def serve(target: str, model: nn.Module, ready: threading.Event, stop: threading.Event) -> None:
    async def main() -> None:
        chunks = _chunk_format()
        core = LearnerCore(
            _Holder(), model, DistConfig(actor_timeout_s=600), "", chunks, WeightStore()
        )  # type: ignore[arg-type]  # fmt: skip
        servicer = LearnerServicer(CoreEndpoint(core, "ppo", {}, {}))  # attaches the encoder
        t = time.perf_counter()
        core.publish()
        print(f"serialise once: {time.perf_counter() - t:.3f} s")
        server, _ = create_server(
            target, ServerConfig(max_message_bytes=64 * MIB), [(servicer, SERVICE)]
        )
        await server.start()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await server.stop(0)

    asyncio.run(main())


def _actor(target: str, side: int, go: Any, out: Any) -> None:
    torch.set_num_threads(1)
    model = nn.Linear(side, side, bias=False)
    go.wait()
    out.put(fetch(target, model))


def broadcast(target: str, model: nn.Module, actors: int) -> tuple[float, float]:
    """Seconds for one actor alone, and for ``actors`` actor processes at once."""
    ready, stop = threading.Event(), threading.Event()
    server = threading.Thread(target=serve, args=(target, model, ready, stop))
    server.start()
    ready.wait()
    ctx = mp.get_context("spawn")
    side = int(model.in_features)
    results = []
    for count in (1, actors):
        go, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_actor, args=(target, side, go, out)) for _ in range(count)]
        for p in procs:
            p.start()
        time.sleep(3.0 + 0.5 * count)  # let them import and allocate
        start = time.perf_counter()
        go.set()
        for _ in procs:
            out.get(timeout=600)
        results.append(time.perf_counter() - start)
        for p in procs:
            p.join()
    stop.set()
    server.join()
    return results[0], results[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--actors", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    side = int((args.mb * MIB / 4) ** 0.5)
    model = nn.Linear(side, side, bias=False)
    blob = model.weight.detach().numpy().tobytes()
    print(f"model: {len(blob) / MIB:.1f} MiB, actors: {args.actors}")
    base = loopback_copy_s(blob)
    print(f"one loopback TCP copy: {base:.3f} s ({len(blob) / MIB / base:.0f} MiB/s)")
    with tempfile.TemporaryDirectory() as d:
        for name, target in (("tcp", "127.0.0.1:0"), ("unix", f"unix:{d}/l.sock")):
            if name == "tcp":
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    target = f"127.0.0.1:{s.getsockname()[1]}"
            one, total = broadcast(target, model, args.actors)
            print(
                f"{name}: one actor {one:.3f} s ({one / base:.1f}x loopback copy); "
                f"{args.actors} actors {total:.3f} s ({total / base:.1f}x loopback copy, "
                f"{total / (args.actors * base):.2f}x of {args.actors} sequential copies)"
            )


if __name__ == "__main__":
    main()
