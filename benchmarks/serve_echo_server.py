"""A bare grpc.aio server answering ModelInfer with fixed bytes: the floor of Python gRPC.

Usage: python serve_echo_server.py PORT RESPONSE_FILE
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc import aio


async def main(port: int, response: bytes) -> None:
    async def infer(request: bytes, context: Any) -> bytes:
        return response

    async def ready(request: bytes, context: Any) -> bytes:
        return b"\x08\x01"  # ServerReadyResponse(ready=True)

    server = aio.server(options=[("grpc.so_reuseport", 0)])
    handlers = {  # bytes in, bytes out: no parsing at all
        "ModelInfer": grpc.unary_unary_rpc_method_handler(infer),
        "ServerReady": grpc.unary_unary_rpc_method_handler(ready),
    }
    service = grpc.method_handlers_generic_handler("inference.GRPCInferenceService", handlers)
    server.add_generic_rpc_handlers((service,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    sys.stderr.write(f"echo ready (port {port})\n")
    sys.stderr.flush()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]).read_bytes()))
