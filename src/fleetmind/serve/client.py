"""Client SDK for fleetmind (and any Open Inference Protocol) servers.

::

    with Client(["10.0.0.5:8001", "10.0.0.6:8001"], token="s3cret") as client:
        outputs = client.infer("cartpole", observations)     # {"action": ..., "value": ...}
        action = client.act("cartpole", observation)

Calls are spread round-robin over the replicas; a call answered UNAVAILABLE
(replica restarting), CANCELLED (refused by an overloaded replica's transport, or by
one that is shutting down) or RESOURCE_EXHAUSTED (a full queue) is retried with
exponential backoff on another replica by gRPC itself (see
:class:`fleetmind.rpc.ChannelConfig`). Retries draw on a budget that successes refill:
while a server keeps refusing, the client stops retrying and reports the refusal
rather than multiplying the load. Every call carries a deadline. Failures raise the
matching :class:`FleetmindError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import numpy as np
from google.protobuf import message_factory
from google.protobuf.message import Message

from fleetmind.core.errors import ConfigError
from fleetmind.rpc.auth import bearer_metadata
from fleetmind.rpc.channel import MIB, ChannelConfig, create_channel, join_targets
from fleetmind.rpc.codec import decode_tensor, encode_tensor
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.rpc.status import error_from_rpc
from fleetmind.serve.model import INPUT_NAME, TensorSpec

SERVICE_NAME = "inference.GRPCInferenceService"
RETRY_BUDGET_TOKENS = 100
"""Retry budget of a client: with every call refused, about 50 retries in all, then
none until successes refill it (see :attr:`ChannelConfig.retry_budget_tokens`). A
replica that stops cancels every call it had accepted but not started, at once: a
client with dozens of calls in flight needs as many retries in one burst, which a
budget of 10 (5 retries) turned into failed calls."""


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


@dataclass(frozen=True)
class ModelInfo:
    """What ModelMetadata says about a model."""

    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class InferReply:
    """What a ModelInfer call answered: the outputs and the response parameters
    (a fleetmind server reports ``queue_time_us`` and ``compute_time_us``)."""

    outputs: dict[str, np.ndarray]
    parameters: dict[str, int | bool | str]


def _parameter(value: Any) -> int | bool | str:
    kind = value.WhichOneof("parameter_choice")
    return getattr(value, kind) if kind else 0


class Client:
    """A blocking client over one or several replicas."""

    def __init__(
        self,
        targets: str | Sequence[str],
        *,
        timeout_s: float = 5.0,
        token: str | None = None,
        tls: bool = False,
        tls_ca: Path | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        tls_server_name: str | None = None,
        max_attempts: int = 5,
        max_message_mib: int = 16,
        own_connections: bool = False,
    ) -> None:
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ConfigError(f"{timeout_s=} must be a positive number of seconds")
        target_list = [targets] if isinstance(targets, str) else list(targets)
        self.target = join_targets(target_list)
        self.timeout_s = timeout_s
        config = ChannelConfig(
            max_message_bytes=max_message_mib * MIB,
            max_attempts=max_attempts,
            # Inference is idempotent: a call that a replica refused (overloaded or
            # stopping) before handling it is safe to send again, after a backoff.
            retry_codes=("UNAVAILABLE", "CANCELLED", "RESOURCE_EXHAUSTED"),
            retry_budget_tokens=RETRY_BUDGET_TOKENS,
            tls=tls,
            tls_ca=tls_ca,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_server_name=tls_server_name,
            own_connections=own_connections,
        )
        self._channel = create_channel(self.target, config)
        self._methods = {
            m.name: self._channel.unary_unary(
                f"/{SERVICE_NAME}/{m.name}",
                request_serializer=_serialize,
                response_deserializer=message_factory.GetMessageClass(m.output_type).FromString,
            )
            for m in pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods
        }
        self._metadata = bearer_metadata(token) if token else None

    def _call(self, method: str, request: Any, timeout_s: float | None) -> Any:
        try:
            return self._methods[method](
                request,
                timeout=self.timeout_s if timeout_s is None else timeout_s,
                metadata=self._metadata,
                wait_for_ready=False,
            )
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, self.target) from None

    def server_live(self) -> bool:
        """Whether the server answers."""
        return bool(self._call("ServerLive", pb.ServerLiveRequest(), None).live)

    def server_ready(self) -> bool:
        """Whether the server accepts inference calls."""
        return bool(self._call("ServerReady", pb.ServerReadyRequest(), None).ready)

    def model_ready(self, model: str, version: str = "") -> bool:
        """Whether ``model`` (``version``) accepts inference calls."""
        request = pb.ModelReadyRequest(name=model, version=version)
        return bool(self._call("ModelReady", request, None).ready)

    def model_metadata(
        self, model: str, version: str = "", *, timeout_s: float | None = None
    ) -> ModelInfo:
        """Inputs, outputs and versions of ``model``."""
        reply = self._call(
            "ModelMetadata", pb.ModelMetadataRequest(name=model, version=version), timeout_s
        )

        def specs(tensors: Any) -> tuple[TensorSpec, ...]:
            return tuple(TensorSpec(t.name, t.datatype, tuple(t.shape)) for t in tensors)

        return ModelInfo(
            reply.name,
            tuple(reply.versions),
            reply.platform,
            specs(reply.inputs),
            specs(reply.outputs),
        )

    def infer(
        self,
        model: str,
        observations: np.ndarray,
        *,
        version: str = "",
        outputs: Sequence[str] = (),
        timeout_s: float | None = None,
        explain: bool = False,
    ) -> dict[str, np.ndarray]:
        """Every output (or those named) for a ``[B, *obs_shape]`` batch of observations;
        with ``explain``, also ``attributions`` (per feature, see docs/serving.md)."""
        reply = self.infer_reply(
            model, observations, version=version, outputs=outputs, timeout_s=timeout_s,
            explain=explain,
        )  # fmt: skip
        return reply.outputs

    def infer_reply(
        self,
        model: str,
        observations: np.ndarray,
        *,
        version: str = "",
        outputs: Sequence[str] = (),
        timeout_s: float | None = None,
        explain: bool = False,
    ) -> InferReply:
        """:meth:`infer`, with the response parameters."""
        rows = np.asarray(observations, dtype=np.float32)
        datatype, shape, raw = encode_tensor(rows, INPUT_NAME)
        request = pb.ModelInferRequest(model_name=model, model_version=version)
        if explain:
            request.parameters["explain"].bool_param = True
        request.inputs.add(name=INPUT_NAME, datatype=datatype, shape=shape)
        request.raw_input_contents.append(raw)
        for name in outputs:
            request.outputs.add(name=name)
        reply = self._call("ModelInfer", request, timeout_s)
        decoded = {
            t.name: decode_tensor(raw_out, t.datatype, t.shape, t.name)
            for t, raw_out in zip(reply.outputs, reply.raw_output_contents, strict=True)
        }
        parameters = {key: _parameter(value) for key, value in reply.parameters.items()}
        return InferReply(decoded, parameters)

    def act(self, model: str, observation: np.ndarray, *, version: str = "") -> np.ndarray:
        """The action for one observation."""
        batch = np.asarray(observation, dtype=np.float32)[None]
        action: np.ndarray = self.infer(model, batch, version=version, outputs=("action",))[
            "action"
        ]
        return action[0]  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the connections."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
