"""The pure helpers of benchmarks/federated_engine.py (no engine, no timing)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "federated_engine.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("federated_engine_bench", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_round_times_are_differences_after_the_first_round(bench: ModuleType) -> None:
    rows = [
        {"round": 2, "wall_time_s": 30.0},
        {"round": 1, "wall_time_s": 18.0},
        {"round": 3, "wall_time_s": 41.5},
    ]
    assert bench.round_times(rows) == [12.0, 11.5]


def test_weighted_average_weights_each_site_by_its_count(bench: ModuleType) -> None:
    a = {"w": np.array([0.0, 4.0], dtype=np.float32), "b": np.array([1.0], dtype=np.float32)}
    b = {"w": np.array([3.0, 0.0], dtype=np.float32), "b": np.array([5.0], dtype=np.float32)}
    mean = bench.weighted_average([a, b], [1.0, 3.0])
    np.testing.assert_allclose(mean["w"], [2.25, 1.0])
    np.testing.assert_allclose(mean["b"], [4.0])
    assert mean["w"].dtype == np.float32


def test_weighted_average_refuses_no_updates(bench: ModuleType) -> None:
    with pytest.raises(ValueError, match="positive counts"):
        bench.weighted_average([], [])


def test_counter_deltas_are_per_round(bench: ModuleType) -> None:
    readings = [{"up-0": 10, "down-0": 5}, {"up-0": 25, "down-0": 9}, {"up-0": 27, "down-0": 20}]
    assert bench.counter_deltas(readings) == [{"up-0": 15, "down-0": 4}, {"up-0": 2, "down-0": 11}]


def test_ratio_interval_brackets_the_ratio_of_means(bench: ModuleType) -> None:
    ratio, low, high = bench.ratio_interval([10.0, 11.0, 12.0], [1.0, 1.1, 0.9])
    assert ratio == pytest.approx(11.0)
    assert low <= ratio <= high


def test_weights_bytes_counts_float32(bench: ModuleType) -> None:
    assert bench.weights_bytes({"a": np.zeros((2, 3)), "b": np.zeros(4)}) == 40
