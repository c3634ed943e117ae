"""Explained inference requests: the ``explain`` parameter and the ``attributions`` output.

A request asks for an explanation with the request parameter ``explain: true``
(``ModelInferRequest.parameters["explain"].bool_param`` over gRPC, the same key
in the JSON ``parameters`` over HTTP). Its reply then carries, beside the outputs
it names (all by default), the output ``attributions``: FP32, shaped like the
observations, how much each feature pushed the chosen action (see
:mod:`fleetmind.serve.attribution`)::

    if wants_explanation(request):
        names, outputs = await explained_outputs(request, model, rows)

Requests without the parameter never reach this module.
"""

from __future__ import annotations

import numpy as np

from fleetmind.core.errors import InvalidInputError, echo
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.serve.explainer import ATTRIBUTIONS, EXPLAIN_PARAMETER
from fleetmind.serve.model import ServedModel


def wants_explanation(request: pb.ModelInferRequest) -> bool:
    """True when ``request`` asks for an explanation (InvalidInputError for a non-bool)."""
    if EXPLAIN_PARAMETER not in request.parameters:
        return False
    parameter = request.parameters[EXPLAIN_PARAMETER]
    if parameter.WhichOneof("parameter_choice") != "bool_param":
        raise InvalidInputError(
            f"parameter {EXPLAIN_PARAMETER!r} is {echo(str(parameter).strip())}; send a bool "
            "(bool_param over gRPC, true or false over HTTP)"
        )
    return bool(parameter.bool_param)


def explained_names(request: pb.ModelInferRequest, model: ServedModel) -> tuple[str, ...]:
    """The outputs an explained reply carries: those named (all when none are), then
    ``attributions`` unless named among them."""
    if not request.outputs:
        return (*model.output_order, ATTRIBUTIONS)
    chosen: list[str] = []
    for wanted in request.outputs:
        if wanted.name not in model.output_names and wanted.name != ATTRIBUTIONS:
            raise InvalidInputError(
                f"unknown output {echo(wanted.name)}; model {model.name!r} has "
                f"{sorted(model.output_names | {ATTRIBUTIONS})} when explaining"
            )
        if wanted.name in chosen:
            raise InvalidInputError(f"output {wanted.name!r} is asked for twice; name it once")
        chosen.append(wanted.name)
    if ATTRIBUTIONS not in chosen:
        chosen.append(ATTRIBUTIONS)
    return tuple(chosen)


async def explained_outputs(
    request: pb.ModelInferRequest, model: ServedModel, rows: np.ndarray
) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """The names and outputs of an explained reply: the batcher's outputs, then the
    attributions computed on a worker thread."""
    model.explainer.check()  # before any work: a tabular model says so at once
    names = explained_names(request, model)
    outputs = await model.batcher.submit(rows)
    attributions = await model.explainer.attributions(rows)
    return names, {**outputs, ATTRIBUTIONS: attributions}
