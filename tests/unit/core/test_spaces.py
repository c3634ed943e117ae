import math

import numpy as np
import pytest

from fleetmind.core.errors import InvalidInputError
from fleetmind.core.spaces import SpaceSpec


def test_json_round_trip_with_infinite_bounds() -> None:
    spec = SpaceSpec("box", (2,), "float32", low=(-math.inf, 0.0), high=(math.inf, 1.0))
    data = spec.to_json()
    assert data["low"] == ["-inf", 0.0]
    assert SpaceSpec.from_json(data) == spec
    assert not spec.is_bounded


def test_flat_dim_and_bounded() -> None:
    assert SpaceSpec("discrete", (), "int64", n=5).flat_dim == 5
    box = SpaceSpec("box", (2, 3), "float32", low=(0.0,) * 6, high=(1.0,) * 6)
    assert box.flat_dim == 6
    assert box.is_bounded


def test_check_batch_names_expected_shape() -> None:
    spec = SpaceSpec("box", (4,), "float32")
    spec.check_batch(np.zeros((2, 4)))
    with pytest.raises(InvalidInputError, match=r"expected \[B, 4\]"):
        spec.check_batch(np.zeros((2, 3)))


def test_malformed_description() -> None:
    with pytest.raises(InvalidInputError, match="malformed space"):
        SpaceSpec.from_json({"kind": "box"})
