"""The wire: .proto contracts, tensor codec, server and channel factories, auth, status mapping.

Every fleetmind service (inference, training) is built from these parts::

    server, port = create_server(address, ServerConfig(...), [(servicer, descriptor)], health)
    channel = create_channel(target, ChannelConfig(...))

Generated protobuf modules live in :mod:`fleetmind.rpc.generated` (``scripts/gen-protos``).
"""

from fleetmind.rpc.auth import TokenAuthInterceptor, bearer_metadata, read_tokens
from fleetmind.rpc.channel import ChannelConfig, create_aio_channel, create_channel, join_targets
from fleetmind.rpc.codec import decode_tensor, encode_tensor
from fleetmind.rpc.server import HealthServicer, ServerConfig, create_server, mark_serving
from fleetmind.rpc.status import error_from_rpc, rpc_errors, status_code

__all__ = [
    "ChannelConfig",
    "HealthServicer",
    "ServerConfig",
    "TokenAuthInterceptor",
    "bearer_metadata",
    "create_aio_channel",
    "create_channel",
    "create_server",
    "decode_tensor",
    "encode_tensor",
    "error_from_rpc",
    "join_targets",
    "mark_serving",
    "read_tokens",
    "rpc_errors",
    "status_code",
]
