"""A bare grpc.aio server answering ModelInfer with fixed bytes: the floor of Python gRPC.

Usage: python serve_echo_server.py PORT RESPONSE_FILE
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

Handler = Callable[[bytes, Any], Awaitable[bytes]]


async def serve_bytes(port: int, infer: Handler, options: list[tuple[str, Any]]) -> None:
    """Serve ModelInfer with ``infer`` (request bytes in, answer bytes out, no parsing by
    gRPC) and a ServerReady that says ready, on 127.0.0.1:``port``, until killed."""

    async def ready(request: bytes, context: Any) -> bytes:
        return b"\x08\x01"  # ServerReadyResponse(ready=True)

    server = aio.server(options=options)
    handlers = {
        "ModelInfer": grpc.unary_unary_rpc_method_handler(infer),
        "ServerReady": grpc.unary_unary_rpc_method_handler(ready),
    }
    service = grpc.method_handlers_generic_handler("inference.GRPCInferenceService", handlers)
    server.add_generic_rpc_handlers((service,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    sys.stderr.write(f"ready (port {port})\n")
    sys.stderr.flush()
    await server.wait_for_termination()


async def main(port: int, response: bytes) -> None:
    async def infer(request: bytes, context: Any) -> bytes:
        return response

    await serve_bytes(port, infer, [("grpc.so_reuseport", 0)])


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]).read_bytes()))
