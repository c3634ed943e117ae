"""Responses written from cached pieces parse to the message protobuf itself would build."""

from __future__ import annotations

import numpy as np
import pytest

from fleetmind.rpc.codec import decode_tensor
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.serve import response as response_module
from fleetmind.serve.response import ResponseEncoder

DATATYPES = {"action": "INT64", "action_probs": "FP32", "value": "FP32"}


def outputs(rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(rows)
    return {
        "action": rng.integers(0, 5, size=rows),
        "action_probs": rng.random((rows, 5), dtype=np.float32),
        "value": rng.random(rows),  # float64: must travel as the declared FP32
    }


def expected(request_id: str, names: tuple[str, ...], out: dict[str, np.ndarray]) -> bytes:
    message = pb.ModelInferResponse(model_name="m", model_version="7", id=request_id)
    for name in names:
        array = out[name].astype({"INT64": "<i8", "FP32": "<f4"}[DATATYPES[name]])
        message.outputs.add(name=name, datatype=DATATYPES[name], shape=array.shape)
        message.raw_output_contents.append(array.tobytes())
    return message.SerializeToString()


@pytest.mark.parametrize("rows", [1, 3, 100])  # 100 rows: lengths need multi-byte varints
@pytest.mark.parametrize("request_id", ["", "req-42"])
@pytest.mark.parametrize("names", [("action", "action_probs", "value"), ("value", "action")])
def test_encoded_bytes_equal_protobufs_own(
    rows: int, request_id: str, names: tuple[str, ...]
) -> None:
    encoder = ResponseEncoder("m", "7", DATATYPES)
    out = outputs(rows)
    for _ in range(2):  # the second call uses the cached layout
        raw = encoder.encode(request_id, names, out)
        assert raw == expected(request_id, names, out)
    parsed = pb.ModelInferResponse.FromString(raw)
    assert [o.name for o in parsed.outputs] == list(names)
    value_at = names.index("value")
    np.testing.assert_allclose(
        decode_tensor(parsed.raw_output_contents[value_at], "FP32", [rows]),
        out["value"].astype(np.float32),
    )


def test_layout_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(response_module, "MAX_CACHED_LAYOUTS", 4)
    encoder = ResponseEncoder("m", "7", DATATYPES)
    for rows in range(1, 20):
        out = outputs(rows)
        assert encoder.encode("", ("action",), out) == expected("", ("action",), out)
    assert len(encoder._layouts) <= 4


@pytest.mark.parametrize(
    ("queue_s", "compute_s"), [(0.0, 0.0), (0.000_05, 0.000_1), (0.25, 3.5), (1e4, 1e-6)]
)
def test_timing_parameters_parse_as_int64_response_parameters(
    queue_s: float, compute_s: float
) -> None:
    encoder = ResponseEncoder("m", "7", DATATYPES)
    out = outputs(2)
    timing = response_module.timing_parameters(queue_s, compute_s)
    raw = encoder.encode("req-1", ("action",), out, timing)
    message = pb.ModelInferResponse.FromString(raw)
    assert message.id == "req-1"
    assert message.parameters[response_module.QUEUE_TIME].int64_param == int(queue_s * 1e6)
    assert message.parameters[response_module.COMPUTE_TIME].int64_param == int(compute_s * 1e6)
    action = message.outputs[0]
    decoded = decode_tensor(message.raw_output_contents[0], action.datatype, action.shape, "a")
    np.testing.assert_array_equal(decoded, out["action"])
