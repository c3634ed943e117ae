"""Open Inference Protocol messages <-> numpy, with every check a request needs.

Each check raises :class:`InvalidInputError` whose message names the input and
says what was expected; the servicer turns it into ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import math

import numpy as np

from fleetmind.core.errors import InvalidInputError, echo
from fleetmind.rpc.codec import check_shape, decode_tensor, numpy_dtype
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.serve.model import INPUT_DATATYPE, INPUT_NAME, ServedModel, TensorSpec


def _expected(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join("B" if d < 0 else str(d) for d in shape) + "]"


_FP32 = numpy_dtype(INPUT_DATATYPE)


def decode_observations(request: pb.ModelInferRequest, model: ServedModel) -> np.ndarray:
    """The ``[B, *obs_shape]`` FP32 observations of ``request`` (B >= 1, all finite).

    This runs for every call, so the common case (the expected shape, raw contents)
    costs a handful of comparisons; the detailed checks run only to explain an error.
    """
    inputs = request.inputs
    if len(inputs) != 1:
        names = echo([i.name for i in inputs])
        raise InvalidInputError(
            f"model {model.name!r} takes exactly 1 input {INPUT_NAME!r}; got {len(inputs)} {names}"
        )
    tensor = inputs[0]
    if tensor.name != INPUT_NAME:
        raise InvalidInputError(
            f"unknown input {echo(tensor.name)}; model {model.name!r} takes only {INPUT_NAME!r}"
        )
    if tensor.datatype != INPUT_DATATYPE:
        raise InvalidInputError(
            f"input {INPUT_NAME!r} has datatype {echo(tensor.datatype)}; expected {INPUT_DATATYPE}"
        )
    shape = tuple(tensor.shape)
    obs_shape = model.observation_shape
    if shape[1:] != obs_shape or len(shape) != len(obs_shape) + 1 or shape[0] <= 0:
        _explain_shape(shape, obs_shape)
    if shape[0] > model.max_rows:
        raise InvalidInputError(
            f"input {INPUT_NAME!r} carries {shape[0]} rows; this server takes at most "
            f"{model.max_rows} rows per request (--max-request-rows): split the batch"
        )
    rows = _values(request, tensor, shape)
    if not _all_finite(rows):
        raise InvalidInputError(f"input {INPUT_NAME!r} contains NaN or infinite values")
    return rows


SMALL_INPUT = 256
"""Inputs of at most this many values are checked in Python: for a few rows that is
several times cheaper than numpy's isfinite().all()."""


def _all_finite(rows: np.ndarray) -> bool:
    if rows.size <= SMALL_INPUT:
        return all(map(math.isfinite, rows.ravel().tolist()))
    return bool(np.isfinite(rows).all())


def _explain_shape(shape: tuple[int, ...], obs_shape: tuple[int, ...]) -> None:
    """Raise the error that an unexpected observation shape deserves."""
    check_shape(shape, f"input {INPUT_NAME!r}")  # negative dimensions, absurd ranks
    if shape and shape[0] == 0 and shape[1:] == obs_shape:
        raise InvalidInputError(f"input {INPUT_NAME!r} is an empty batch; send at least one row")
    raise InvalidInputError(
        f"input {INPUT_NAME!r} has shape {echo(list(shape))}; expected "
        f"{_expected((-1, *obs_shape))} with B >= 1"
    )


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
        data = raw[0]
        if len(data) != math.prod(shape) * 4:
            return decode_tensor(data, INPUT_DATATYPE, shape, where)  # raises, explaining
        return np.frombuffer(data, dtype=_FP32).reshape(shape)
    values = tensor.contents.fp32_contents
    count = math.prod(shape)
    if len(values) != count:
        raise InvalidInputError(
            f"{where}: contents.fp32_contents holds {len(values)} values but shape "
            f"{echo(list(shape))} needs {count}"
        )
    return np.asarray(values, dtype=np.float32).reshape(shape)


def requested_outputs(request: pb.ModelInferRequest, model: ServedModel) -> tuple[str, ...]:
    """Names of the outputs to return, in the request's order (all when none are named)."""
    if not request.outputs:
        return model.output_order
    chosen: list[str] = []
    for wanted in request.outputs:
        if wanted.name not in model.output_names:
            raise InvalidInputError(
                f"unknown output {echo(wanted.name)}; model {model.name!r} has "
                f"{sorted(model.output_names)}"
            )
        if wanted.name in chosen:
            raise InvalidInputError(f"output {wanted.name!r} is asked for twice; name it once")
        chosen.append(wanted.name)
    return tuple(chosen)


def check_reply_size(reply: bytes, model: ServedModel) -> bytes:
    """``reply``, or InvalidInputError when it is over the message limit (the row cap
    keeps room for names and shapes; a long request id can still take it)."""
    if len(reply) > model.max_reply_bytes:
        raise InvalidInputError(
            f"the reply would be {len(reply)} bytes, over the {model.max_reply_bytes}-byte "
            "message limit; send fewer rows or a shorter request id"
        )
    return reply


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
