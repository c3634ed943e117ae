"""The tensor codec: round trips, zero copies, and clear errors for bad bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fleetmind.core.errors import InvalidInputError
from fleetmind.rpc.codec import (
    DATATYPES,
    datatype_of,
    decode_tensor,
    embedded_message,
    encode_tensor,
    numpy_dtype,
)
from fleetmind.rpc.generated import training_pb2 as pb

_DTYPES = [numpy_dtype(name) for name in DATATYPES]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_DTYPES).flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0))))
def test_round_trip_keeps_values_dtype_and_shape(array: np.ndarray) -> None:
    datatype, shape, raw = encode_tensor(array)
    back = decode_tensor(raw, datatype, shape)
    assert back.dtype == array.dtype
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_decode_is_a_read_only_view_without_copy() -> None:
    raw = np.arange(6, dtype="<f4").tobytes()
    array = decode_tensor(raw, "FP32", [2, 3])
    assert not array.flags.writeable
    assert array.base is not None


def test_big_endian_input_is_sent_little_endian() -> None:
    array = np.arange(3, dtype=">i4")
    datatype, _, raw = encode_tensor(array)
    assert datatype == "INT32"
    assert raw == np.arange(3, dtype="<i4").tobytes()


def test_length_mismatch_names_the_tensor_and_the_expected_size() -> None:
    with pytest.raises(
        InvalidInputError, match=r"observation: raw contents hold 8 bytes .* needs 12"
    ):
        decode_tensor(b"\0" * 8, "FP32", [1, 3], name="observation")


@pytest.mark.parametrize(
    ("datatype", "shape", "match"),
    [
        ("FP8", [1], "datatype 'FP8' is not supported"),
        ("BYTES", [1], "datatype 'BYTES' is not supported"),
        ("FP32", [-1, 3], "negative dimension"),
        ("FP32", [1] * 17, "rank 17"),
    ],
)
def test_bad_descriptions_are_refused(datatype: str, shape: list[int], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        decode_tensor(b"", datatype, shape)


def test_objects_have_no_wire_datatype() -> None:
    with pytest.raises(InvalidInputError, match="no wire datatype"):
        datatype_of(np.dtype(object))


@pytest.mark.parametrize("size", [0, 1, 127, 128, 300, 70_000])
def test_an_embedded_message_parses_as_the_field_set(size: int) -> None:
    weights = pb.WeightsChunk(version=3, total_bytes=size, data=b"x" * size, manifest="[]")
    push = pb.PushResponse(accepted=1, version=3)
    raw = pb.ExchangeResponse(push=push).SerializeToString()
    parsed = pb.ExchangeResponse.FromString(raw + embedded_message(2, weights.SerializeToString()))
    assert parsed == pb.ExchangeResponse(push=push, weights=weights)
    alone = pb.ExchangeResponse.FromString(embedded_message(2, weights.SerializeToString()))
    assert alone == pb.ExchangeResponse(weights=weights)
    with pytest.raises(ValueError, match="field number"):
        embedded_message(0, b"")
