"""Register a servicer for a service straight from its protobuf descriptor.

Compared with protoc's ``add_..._to_server`` helpers this parses requests
leniently: bytes that are not a valid message reach the handler as a
:class:`MalformedRequest`, and :func:`fleetmind.rpc.status.rpc_errors` (unary) or
:func:`fleetmind.rpc.status.rpc_stream_errors` (streaming) answer them
``INVALID_ARGUMENT`` instead of gRPC's generic failure. Streaming methods are
served too: a client stream reaches the handler as an async iterator of requests,
a server stream is an async generator::

    add_service(server, servicer, pb2.DESCRIPTOR.services_by_name["MyService"])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message


@dataclass(frozen=True)
class MalformedRequest:
    """Stands in for a request whose bytes do not parse as the expected message."""

    message_type: str
    """Full name of the message the bytes should have been."""
    error: str
    """What the parser said."""

    def describe(self) -> str:
        """A message for the caller."""
        return f"request is not a valid {self.message_type}: {self.error}"


def lenient_parser(descriptor: Descriptor) -> Callable[[bytes], Message | MalformedRequest]:
    """A request deserializer that never raises."""
    cls = message_factory.GetMessageClass(descriptor)

    def parse(raw: bytes) -> Message | MalformedRequest:
        try:
            return cls.FromString(raw)
        except (DecodeError, ValueError, RuntimeError) as exc:
            return MalformedRequest(descriptor.full_name, str(exc) or type(exc).__name__)

    return parse


def _serializer(cls: type[Message]) -> Callable[[Message | bytes], bytes]:
    """``SerializeToString``, except that pre-serialised ``bytes`` pass through as they are
    (a handler that sends the same message to many callers serialises it once)."""

    def serialize(response: Message | bytes) -> bytes:
        if isinstance(response, bytes):
            return response
        return response.SerializeToString()

    return serialize


Guard = Callable[[Callable[..., Any], MethodDescriptor], Callable[..., Any]]
"""Wraps a servicer method that does not know :class:`MalformedRequest` (see
:func:`fleetmind.rpc.status.refusing_malformed`)."""


def add_service(
    server: grpc.aio.Server, servicer: Any, service: ServiceDescriptor, guard: Guard | None = None
) -> None:
    """Serve every method of ``service`` with the same-named method of ``servicer``.

    ``guard`` wraps each method first: servicers written elsewhere (health,
    reflection) need one to answer malformed requests.
    """
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        response_cls = message_factory.GetMessageClass(method.output_type)
        kinds = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }
        make = kinds[(bool(method.client_streaming), bool(method.server_streaming))]
        behaviour = getattr(servicer, method.name)
        handlers[method.name] = make(
            guard(behaviour, method) if guard is not None else behaviour,
            request_deserializer=lenient_parser(method.input_type),
            response_serializer=_serializer(response_cls),
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
