"""Open Inference Protocol messages <-> numpy, with every check a request needs.

Each check raises :class:`InvalidInputError` whose message names the input and
says what was expected; the servicer turns it into ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from fleetmind.core.errors import InvalidInputError
from fleetmind.rpc.codec import check_shape, decode_tensor, encode_tensor
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.serve.model import INPUT_DATATYPE, INPUT_NAME, ServedModel, TensorSpec


def _expected(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join("B" if d < 0 else str(d) for d in shape) + "]"


def decode_observations(request: pb.ModelInferRequest, model: ServedModel) -> np.ndarray:
    """The ``[B, *obs_shape]`` FP32 observations of ``request`` (B >= 1, all finite)."""
    inputs = request.inputs
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise InvalidInputError(
            f"model {model.name!r} takes exactly 1 input {INPUT_NAME!r}; got {len(inputs)} {names}"
        )
    tensor = inputs[0]
    if tensor.name != INPUT_NAME:
        raise InvalidInputError(
            f"unknown input {tensor.name!r}; model {model.name!r} takes only {INPUT_NAME!r}"
        )
    if tensor.datatype != INPUT_DATATYPE:
        raise InvalidInputError(
            f"input {INPUT_NAME!r} has datatype {tensor.datatype!r}; expected {INPUT_DATATYPE}"
        )
    shape = check_shape(tensor.shape, f"input {INPUT_NAME!r}")
    obs_shape = model.observation_shape
    if len(shape) != len(obs_shape) + 1 or shape[1:] != obs_shape:
        raise InvalidInputError(
            f"input {INPUT_NAME!r} has shape {list(shape)}; expected "
            f"{_expected((-1, *obs_shape))} with B >= 1"
        )
    if shape[0] == 0:
        raise InvalidInputError(f"input {INPUT_NAME!r} is an empty batch; send at least one row")
    rows = _values(request, tensor, shape)
    if not np.isfinite(rows).all():
        raise InvalidInputError(f"input {INPUT_NAME!r} contains NaN or infinite values")
    return rows


def _values(
    request: pb.ModelInferRequest,
    tensor: pb.ModelInferRequest.InferInputTensor,
    shape: tuple[int, ...],
) -> np.ndarray:
    where = f"input {INPUT_NAME!r}"
    raw = request.raw_input_contents
    if raw:
        if len(raw) != 1:
            raise InvalidInputError(
                f"raw_input_contents has {len(raw)} entries; expected 1 (one per input)"
            )
        if tensor.HasField("contents"):
            raise InvalidInputError(f"{where}: send raw_input_contents or contents, not both")
        return decode_tensor(raw[0], INPUT_DATATYPE, shape, where)
    values = tensor.contents.fp32_contents
    count = int(np.prod(shape))
    if len(values) != count:
        raise InvalidInputError(
            f"{where}: contents.fp32_contents holds {len(values)} values but shape "
            f"{list(shape)} needs {count}"
        )
    return np.asarray(values, dtype=np.float32).reshape(shape)


def requested_outputs(request: pb.ModelInferRequest, model: ServedModel) -> list[TensorSpec]:
    """The outputs to return, in the request's order (all when none are named)."""
    if not request.outputs:
        return list(model.outputs)
    by_name = {o.name: o for o in model.outputs}
    chosen = []
    for wanted in request.outputs:
        spec = by_name.get(wanted.name)
        if spec is None:
            raise InvalidInputError(
                f"unknown output {wanted.name!r}; model {model.name!r} has {sorted(by_name)}"
            )
        chosen.append(spec)
    return chosen


def encode_response(
    request: pb.ModelInferRequest,
    model: ServedModel,
    specs: Iterable[TensorSpec],
    outputs: dict[str, np.ndarray],
) -> pb.ModelInferResponse:
    """A response with the chosen outputs as raw little-endian contents."""
    response = pb.ModelInferResponse(
        model_name=model.name, model_version=model.version, id=request.id
    )
    for spec in specs:
        datatype, shape, raw = encode_tensor(outputs[spec.name], spec.name)
        response.outputs.add(name=spec.name, datatype=datatype, shape=shape)
        response.raw_output_contents.append(raw)
    return response


def metadata_response(model: ServedModel, versions: list[str]) -> pb.ModelMetadataResponse:
    """ModelMetadata for ``model``."""
    return pb.ModelMetadataResponse(
        name=model.name,
        versions=versions,
        platform=model.loaded.platform,
        inputs=[_tensor_meta(t) for t in model.inputs],
        outputs=[_tensor_meta(t) for t in model.outputs],
    )


def _tensor_meta(spec: TensorSpec) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=spec.name, datatype=spec.datatype, shape=list(spec.shape)
    )
