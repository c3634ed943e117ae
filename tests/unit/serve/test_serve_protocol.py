"""Request decoding: the fast path accepts what it should and explains what it refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fleetmind.core.errors import InvalidInputError
from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.serve.batcher import BatchPolicy
from fleetmind.serve.model import LoadedModel, ServedModel, build_served_model
from fleetmind.serve.protocol import decode_observations
from fleetmind.serve.testing import OBS_DIM, toy_agent


@pytest.fixture(scope="module")
def model() -> ServedModel:
    return build_served_model(
        "m", "1", LoadedModel(toy_agent()), Path("toy"), policy=BatchPolicy(in_thread=False)
    )


def request(obs: np.ndarray, shape: list[int] | None = None) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(
        name="observation", datatype="FP32", shape=list(obs.shape) if shape is None else shape
    )
    message.raw_input_contents.append(obs.astype("<f4").tobytes())
    return message


@pytest.mark.parametrize("rows", [2, 1000])
def test_large_finite_values_are_accepted(model: ServedModel, rows: int) -> None:
    """Their float32 sum would overflow; they are still finite."""
    obs = np.full((rows, OBS_DIM), 3e38, np.float32)
    np.testing.assert_array_equal(decode_observations(request(obs), model), obs)


@pytest.mark.parametrize("rows", [3, 1000])  # the small-input path and numpy's
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(model: ServedModel, bad: float, rows: int) -> None:
    obs = np.zeros((rows, OBS_DIM), np.float32)
    obs[rows - 2, 2] = bad
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        decode_observations(request(obs), model)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ([0, OBS_DIM], "empty batch"),
        ([-1, OBS_DIM], "negative dimension"),
        ([1, OBS_DIM, 1], rf"expected \[B, {OBS_DIM}\]"),
        ([OBS_DIM], rf"expected \[B, {OBS_DIM}\]"),
        ([1, OBS_DIM + 1], rf"expected \[B, {OBS_DIM}\]"),
        ([2, OBS_DIM], "raw contents hold"),
    ],
)
def test_bad_shapes_are_explained(model: ServedModel, shape: list[int], message: str) -> None:
    obs = np.zeros((1, OBS_DIM), np.float32)
    with pytest.raises(InvalidInputError, match=message):
        decode_observations(request(obs, shape), model)
