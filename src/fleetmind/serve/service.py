"""The ``inference.GRPCInferenceService`` servicer: protobuf in, repository call, protobuf out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
from grpc import aio

from fleetmind import __version__
from fleetmind.core.errors import NotFoundError
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.rpc.status import rpc_errors, status_code
from fleetmind.serve.explain import explained_outputs, wants_explanation
from fleetmind.serve.metrics import UNKNOWN_MODEL, MetricsRecorder
from fleetmind.serve.protocol import (
    check_reply_size,
    decode_observations,
    metadata_response,
    requested_outputs,
)
from fleetmind.serve.repository import ModelRepository
from fleetmind.serve.response import timing_parameters
from fleetmind.serve.shedding import PUSHBACK_KEY, LoadShedder, overload_message

SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
"""Descriptor of the service, for registration and reflection."""

Context = aio.ServicerContext[Any, Any]


class InferenceServicer:
    """Answers the Open Inference Protocol from a :class:`ModelRepository`."""

    def __init__(
        self,
        repository: ModelRepository,
        metrics: MetricsRecorder,
        shedder: LoadShedder | None = None,
    ) -> None:
        self.repository = repository
        self.metrics = metrics
        self.shedder = shedder
        """Refuses a share of new inference calls while calls wait too long; None: never."""
        self.accepting = False
        """False before the models are loaded and once shutdown has begun."""

    @rpc_errors
    async def ServerLive(self, request: pb.ServerLiveRequest, context: Context) -> Any:
        return pb.ServerLiveResponse(live=True)

    @rpc_errors
    async def ServerReady(self, request: pb.ServerReadyRequest, context: Context) -> Any:
        ready = self.accepting and bool(self.repository.names())
        return pb.ServerReadyResponse(ready=ready)

    @rpc_errors
    async def ModelReady(self, request: pb.ModelReadyRequest, context: Context) -> Any:
        try:
            self.repository.get(request.name, request.version)
        except NotFoundError:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=self.accepting)

    @rpc_errors
    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Context) -> Any:
        return pb.ServerMetadataResponse(name="fleetmind", version=__version__, extensions=[])

    @rpc_errors
    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Context) -> Any:
        model = self.repository.get(request.name, request.version)
        return metadata_response(model, self.repository.versions(model.name))

    @rpc_errors
    async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> Any:
        start = time.perf_counter()
        if pushback_ms := self.overloaded(request.model_name, start):
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                overload_message(pushback_ms),
                trailing_metadata=((PUSHBACK_KEY, str(pushback_ms)),),
            )
        label, status, started = UNKNOWN_MODEL, "OK", False
        try:
            model = self.repository.get(request.model_name, request.model_version)
            label = model.name
            self.metrics.started(label)
            started = True
            rows = decode_observations(request, model)
            if wants_explanation(request):
                names, outputs = await explained_outputs(request, model, rows)
                reply = model.encoder.encode(request.id, names, outputs)
            else:
                names = requested_outputs(request, model)
                timed = await model.batcher.submit_timed(rows)
                timing = timing_parameters(timed.queue_s, timed.compute_s)
                reply = model.encoder.encode(request.id, names, timed.outputs, timing)
            return check_reply_size(reply, model)
        except BaseException as exc:
            status = _status_name(exc)
            raise
        finally:
            self.metrics.record(label, status, time.perf_counter() - start, started=started)

    def overloaded(self, model_name: str, start: float) -> int:
        """0 to take an inference call up; otherwise it is refused, and counted, and this
        is the pushback in milliseconds to give its caller."""
        if self.shedder is None:
            return 0
        pushback_ms = self.shedder.refuse()
        if pushback_ms:
            served = model_name in self.repository.names()
            label = model_name if served else UNKNOWN_MODEL
            seconds = time.perf_counter() - start
            self.metrics.record(label, "RESOURCE_EXHAUSTED", seconds, started=False)
        return pushback_ms


def _status_name(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    return status_code(exc).name
