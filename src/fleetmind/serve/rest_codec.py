"""The Open Inference Protocol's HTTP/REST bodies <-> the gRPC flavour's messages.

A REST inference request becomes the ``ModelInferRequest`` that the gRPC flavour
would have sent, so both pass the same checks (:mod:`fleetmind.serve.protocol`)
and the same batcher. Two body layouts are understood, as Triton does:

- JSON only: each input carries ``data``, a flat or nested list of numbers;
- JSON then raw bytes (Triton's binary tensor extension): the header
  ``Inference-Header-Content-Length`` gives the JSON's length, and an input with
  ``"parameters": {"binary_data_size": N}`` takes the next N bytes that follow it.

Replies mirror the request: outputs as JSON ``data``, or as raw bytes after the
JSON for outputs asked for with ``"parameters": {"binary_data": true}`` (every
output when the request's parameters say ``"binary_data_output": true``)::

    request, binary = infer_request(body, header_length)
    rows = decode_observations(request, model)
    ...
    body, json_length = infer_reply(model, request.id, names, outputs, binary)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from fleetmind.core.errors import InvalidInputError, echo
from fleetmind.rpc.codec import check_shape, numpy_dtype
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.serve.batcher import Timed
from fleetmind.serve.explainer import EXPLAIN_PARAMETER
from fleetmind.serve.model import ServedModel
from fleetmind.serve.response import COMPUTE_TIME, QUEUE_TIME

HEADER_LENGTH = "Inference-Header-Content-Length"
"""Header of a body whose JSON is followed by raw tensor bytes (binary extension)."""

_NUMBER_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}
"""JSON values a datatype of each numpy kind accepts (booleans only for BOOL)."""


def infer_request(body: bytes, header_length: int | None) -> tuple[pb.ModelInferRequest, bool]:
    """The ``ModelInferRequest`` a REST body stands for, and whether its outputs
    default to raw bytes (``binary_data_output``); InvalidInputError naming what is
    wrong with the body."""
    if header_length is None:
        header_length = len(body)
    elif not 0 <= header_length <= len(body):
        raise InvalidInputError(
            f"{HEADER_LENGTH} is {header_length} but the body has {len(body)} bytes; "
            "send the length of the JSON that starts the body"
        )
    document = _json_object(body[:header_length])
    binary = memoryview(body)[header_length:]
    request = pb.ModelInferRequest(id=_field(document, "id", str, ""))
    inputs = _field(document, "inputs", list, None)
    if not inputs:
        raise InvalidInputError("'inputs' is empty: send a list of input tensors")
    used = 0
    for index, tensor in enumerate(inputs):
        used += _add_input(request, tensor, f"inputs[{index}]", binary[used:])
    if used != len(binary):
        raise InvalidInputError(
            f"{len(binary) - used} bytes follow the JSON that no input claims; set each "
            "input's parameters.binary_data_size to its length in bytes"
        )
    parameters = _field(document, "parameters", dict, {})
    binary_outputs = _binary_flag(parameters, "binary_data_output")
    if EXPLAIN_PARAMETER in parameters:  # the same request parameter as over gRPC
        flag = _binary_flag(parameters, EXPLAIN_PARAMETER)
        request.parameters[EXPLAIN_PARAMETER].bool_param = flag
    for index, wanted in enumerate(_field(document, "outputs", list, [])):
        where = f"outputs[{index}]"
        if not isinstance(wanted, dict):
            raise InvalidInputError(f"{where} is not an object; send {{'name': ...}}")
        output = request.outputs.add(name=_field(wanted, "name", str, None, where))
        flag = _field(wanted, "parameters", dict, {}, where).get("binary_data")
        if flag is not None:
            output.parameters["binary_data"].bool_param = _binary_flag(
                {"binary_data": flag}, "binary_data", where
            )
    return request, binary_outputs


def _json_object(text: bytes) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(
            f"the body is not JSON ({exc}); send an inference request object"
        ) from None
    except RecursionError:
        raise InvalidInputError("the body's JSON is nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidInputError(
            f"the body is JSON {type(document).__name__}; send an object with 'inputs'"
        )
    return document


_JSON_TYPES = {str: "string", list: "list", dict: "object", int: "integer"}


def _field(document: Mapping[str, Any], key: str, kind: type, default: Any, where: str = "") -> Any:
    """``document[key]`` when it is a ``kind``; ``default`` when absent (required when
    ``default`` is None)."""
    place = f"{where}.{key}" if where else key
    if key not in document:
        if default is None:
            raise InvalidInputError(f"'{place}' is missing; send a {_JSON_TYPES[kind]}")
        return default
    value = document[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidInputError(f"'{place}' is {echo(value)}; send a {_JSON_TYPES[kind]}")
    return value


def _binary_flag(parameters: Mapping[str, Any], key: str, where: str = "parameters") -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInputError(f"{where}.{key} is {echo(value)}; send true or false")
    return value


def _add_input(request: pb.ModelInferRequest, tensor: Any, where: str, binary: memoryview) -> int:
    """Add ``tensor`` to ``request`` as raw contents; returns the binary bytes it took."""
    if not isinstance(tensor, dict):
        raise InvalidInputError(f"{where} is not an object; send name, shape, datatype, data")
    name = _field(tensor, "name", str, None, where)
    datatype = _field(tensor, "datatype", str, None, where)
    dims = _field(tensor, "shape", list, None, where)
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        raise InvalidInputError(f"{where}.shape is {echo(dims)}; send a list of integers")
    shape = check_shape(dims, f"input {echo(name)}")
    request.inputs.add(name=name, datatype=datatype, shape=shape)
    size = _field(tensor, "parameters", dict, {}, where).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= len(binary):
            raise InvalidInputError(
                f"{where}.parameters.binary_data_size is {echo(size)} but {len(binary)} "
                "bytes follow; send the byte length of this input's raw data"
            )
        request.raw_input_contents.append(bytes(binary[:size]))
        return int(size)
    if "data" not in tensor:
        raise InvalidInputError(f"{where} has no 'data' (nor parameters.binary_data_size)")
    request.raw_input_contents.append(_json_values(tensor["data"], datatype, shape, name))
    return 0


def _json_values(data: Any, datatype: str, shape: tuple[int, ...], name: str) -> bytes:
    """The raw bytes of JSON ``data`` (flat or nested) as ``datatype``."""
    where = f"input {echo(name)}"
    dtype = numpy_dtype(datatype, where)
    if not isinstance(data, list):
        raise InvalidInputError(f"{where}: data is {echo(data)}; send a list of numbers")
    try:
        values = np.asarray(data)
    except (ValueError, OverflowError):
        raise InvalidInputError(
            f"{where}: data is not a rectangular list of numbers; send a flat list or "
            "nested lists of equal length"
        ) from None
    if values.size and values.dtype.kind not in _NUMBER_KINDS[dtype.kind]:
        raise InvalidInputError(
            f"{where}: data holds {values.dtype.kind!r}-kind values (strings, booleans or "
            f"objects); {datatype} takes numbers"
        )
    count = math.prod(shape)
    if values.size != count:
        raise InvalidInputError(
            f"{where}: data holds {values.size} values but shape {list(shape)} needs {count}"
        )
    return values.astype(dtype).tobytes()


def wants_binary(request: pb.ModelInferRequest, name: str, default: bool) -> bool:
    """Whether output ``name`` goes back as raw bytes."""
    for wanted in request.outputs:
        if wanted.name == name and "binary_data" in wanted.parameters:
            return bool(wanted.parameters["binary_data"].bool_param)
    return default


def infer_reply(
    model: ServedModel,
    request: pb.ModelInferRequest,
    names: tuple[str, ...],
    outputs: Mapping[str, np.ndarray],
    binary_default: bool,
    timing: Timed | None = None,
) -> tuple[bytes, int | None]:
    """The reply body and, when raw bytes follow its JSON, the JSON's length; with
    ``timing``, the response parameters ``queue_time_us`` and ``compute_time_us``
    as the gRPC flavour sends them."""
    datatypes = model.datatypes
    tensors: list[dict[str, Any]] = []
    raw: list[bytes] = []
    for name in names:
        array = np.asarray(outputs[name])
        datatype = datatypes[name]
        array = array.astype(numpy_dtype(datatype, name), copy=False)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if wants_binary(request, name, binary_default):
            data = array.tobytes()
            tensor["parameters"] = {"binary_data_size": len(data)}
            raw.append(data)
        else:
            tensor["data"] = array.ravel().tolist()
        tensors.append(tensor)
    document: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if request.id:
        document["id"] = request.id
    if timing is not None:
        document["parameters"] = {
            QUEUE_TIME: max(0, int(timing.queue_s * 1e6)),
            COMPUTE_TIME: max(0, int(timing.compute_s * 1e6)),
        }
    document["outputs"] = tensors
    head = json.dumps(document, separators=(",", ":")).encode()
    body = b"".join([head, *raw])
    if len(body) > model.max_reply_bytes:
        raise InvalidInputError(
            f"the reply would be {len(body)} bytes, over the {model.max_reply_bytes}-byte "
            "message limit; send fewer rows, ask for binary outputs or a shorter request id"
        )
    return body, (len(head) if raw else None)


def metadata_document(model: ServedModel, versions: list[str]) -> dict[str, Any]:
    """The REST model metadata of ``model`` (the same fields as gRPC ModelMetadata)."""
    return {
        "name": model.name,
        "versions": versions,
        "platform": model.loaded.platform,
        "inputs": [_tensor(t.name, t.datatype, t.shape) for t in model.inputs],
        "outputs": [_tensor(t.name, t.datatype, t.shape) for t in model.outputs],
    }


def _tensor(name: str, datatype: str, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": list(shape)}
