"""Round-trip latency of the Learner service's call shapes between two processes.

A stand-in learner (grpc.aio server, answers at once) in a child process on a
``unix:`` socket, the actor's synchronous client here: a unary call (Heartbeat),
a one-chunk client stream (PushTrajectories) and a one-message server stream
(GetWeights, 36 kB: a 64-64 actor-critic), to its message and to its end. Then a
sync version's round trip through the actor's own client, a CartPole-sized chunk
(32 x 16 steps, encoded by the client) up and the weights back (assembled and
checked by the client): as two calls (push, then weights) and as one message each
way on an open Exchange stream.

.venv/bin/python benchmarks/rpc_latency.py --calls 300
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import numpy as np
from grpc import aio

from fleetmind.core.batch import Trajectory
from fleetmind.core.exchange import Chunk, SessionInfo, Weights
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.generated import training_pb2_grpc as pb_grpc
from fleetmind.rpc.weights_codec import encode_weights

WEIGHTS = encode_weights(Weights(1, {"w": np.zeros(9_000, np.float32)}))
"""One version of 36 kB, as the learner streams it (one message)."""


def weights_chunk() -> pb.WeightsChunk:
    return pb.WeightsChunk.FromString(WEIGHTS[0])


def cartpole_chunk(steps: int = 32, envs: int = 16) -> Chunk:
    """A single agent's CartPole chunk of ``steps`` x ``envs``."""
    lead = (steps, envs)
    floats, flags = np.zeros(lead, np.float32), np.zeros(lead, bool)
    trajectory = Trajectory(
        obs=np.zeros((*lead, 4), np.float32),
        actions=np.zeros(lead, np.int64),
        log_probs=floats,
        values=floats,
        rewards=floats,
        terminated=flags,
        truncated=flags,
        valid=~flags,
        next_values=floats,
    )
    return Chunk([trajectory], session_id="s")


class Echo(pb_grpc.LearnerServicer):  # type: ignore[misc]
    async def Heartbeat(self, request: Any, context: Any) -> Any:  # noqa: N802
        return pb.HeartbeatResponse(version=1)

    async def GetWeights(self, request: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802
        yield weights_chunk()

    async def PushTrajectories(self, requests: Any, context: Any) -> Any:  # noqa: N802
        async for _ in requests:
            pass
        return pb.PushResponse(accepted=1)

    async def Exchange(self, requests: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802
        async for _ in requests:
            yield pb.ExchangeResponse(
                push=pb.PushResponse(accepted=1, version=1),
                weights=weights_chunk(),
            )


async def serve(address: str) -> None:
    server = aio.server()
    pb_grpc.add_LearnerServicer_to_server(Echo(), server)
    server.add_insecure_port(address)
    await server.start()
    await server.wait_for_termination()


def timed(name: str, call: Callable[[], object], calls: int) -> None:
    for _ in range(calls // 10):
        call()
    seconds = []
    for _ in range(calls):
        t = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - t)
    seconds.sort()
    print(
        f"{name:34s} median {1e3 * statistics.median(seconds):.3f} ms, "
        f"p90 {1e3 * seconds[int(0.9 * calls)]:.3f} ms"
    )


def round_trips(address: str, calls: int) -> None:
    """A sync version's round trip through the actor's client: two calls, one stream."""
    from fleetmind.rpc.channel import ChannelConfig
    from fleetmind.rpc.learner_client import GrpcLearnerClient
    from fleetmind.rpc.training_codec import chunk_pb

    client = GrpcLearnerClient(address, ChannelConfig(), timeout_s=10)
    chunk = cartpole_chunk()
    print(f"chunk of 32 x 16 CartPole steps: {chunk_pb(chunk).ByteSize() / 1e3:.1f} kB")
    session = SessionInfo("s", 0, 0, "ppo", {}, {}, 32, 0, "sync")

    def two_calls() -> None:
        client.push([chunk])
        client.weights(session, have_version=0, wait_s=1.0)

    stream = client.exchange()

    def one_stream() -> None:
        stream.round(chunk)

    timed("push, then weights (two calls)", two_calls, calls)
    timed("exchange: chunk up, weights down", one_stream, calls)
    stream.close()
    client.close()


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        asyncio.run(serve(sys.argv[2]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    if args.calls < 10:
        parser.error(f"--calls {args.calls}: time at least 10 calls for a median and a p90")
    with tempfile.TemporaryDirectory() as tmp:
        address = f"unix:{tmp}/learner.sock"
        server = subprocess.Popen([sys.executable, __file__, "serve", address])
        try:
            channel = grpc.insecure_channel(address)
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = pb_grpc.LearnerStub(channel)
            chunk = pb.TrajectoryChunk(session_id="s")
            timed("unary (Heartbeat)", lambda: stub.Heartbeat(pb.HeartbeatRequest()), args.calls)
            timed(
                "client stream, 1 chunk (Push)",
                lambda: stub.PushTrajectories(iter([chunk])),
                args.calls,
            )
            timed(
                "server stream to its message",
                lambda: next(iter(stub.GetWeights(pb.GetWeightsRequest()))),
                args.calls,
            )
            timed(
                "server stream to its end",
                lambda: list(stub.GetWeights(pb.GetWeightsRequest())),
                args.calls,
            )
            channel.close()
            round_trips(address, args.calls)
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
