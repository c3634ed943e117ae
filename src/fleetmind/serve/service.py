"""The ``inference.GRPCInferenceService`` servicer: protobuf in, repository call, protobuf out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

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

SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
"""Descriptor of the service, for registration and reflection."""

Context = aio.ServicerContext[Any, Any]


class InferenceServicer:
    """Answers the Open Inference Protocol from a :class:`ModelRepository`."""

    def __init__(self, repository: ModelRepository, metrics: MetricsRecorder) -> None:
        self.repository = repository
        self.metrics = metrics
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


def _status_name(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    return status_code(exc).name
