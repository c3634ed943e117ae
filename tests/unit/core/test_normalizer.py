import numpy as np
import pytest

from fleetmind.core.normalizer import ObservationNormalizer, RunningMeanStd


def test_from_data_hand_computed() -> None:
    stats = RunningMeanStd.from_data(np.array([[1.0], [3.0]]))
    assert stats.count == 2
    assert stats.mean == pytest.approx([2.0])
    assert stats.var == pytest.approx([1.0])  # population variance


def test_chan_merge_equals_concatenation_hand_computed() -> None:
    a = RunningMeanStd.from_data(np.array([[1.0], [3.0]]))  # mean 2, var 1
    b = RunningMeanStd.from_data(np.array([[5.0], [7.0], [9.0]]))  # mean 7, var 8/3
    a.merge(b)
    # [1, 3, 5, 7, 9]: mean 5, population variance 8
    assert a.count == 5
    assert a.mean == pytest.approx([5.0])
    assert a.var == pytest.approx([8.0])


def test_merge_many_shards_matches_whole() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(1000, 3))
    merged = RunningMeanStd((3,))
    for shard in np.array_split(data, 7):
        merged.merge(RunningMeanStd.from_data(shard))
    whole = RunningMeanStd.from_data(data)
    np.testing.assert_allclose(merged.mean, whole.mean)
    np.testing.assert_allclose(merged.var, whole.var)
    assert merged.count == whole.count


def test_merge_into_empty_and_of_empty() -> None:
    empty = RunningMeanStd((1,))
    shard = RunningMeanStd.from_data(np.array([[2.0], [4.0]]))
    empty.merge(RunningMeanStd((1,)))
    assert empty.count == 0
    empty.merge(shard)
    assert empty.mean == pytest.approx([3.0])
    shard.mean[0] = 100.0
    assert empty.mean == pytest.approx([3.0])  # merged stats are a copy


def test_normalizer_standardises_and_clips() -> None:
    stats = RunningMeanStd.from_data(np.array([[0.0], [2.0]]))  # mean 1, var 1
    norm = ObservationNormalizer(stats, clip=5.0)
    out = norm(np.array([[3.0], [1000.0]], dtype=np.float32))
    assert out.dtype == np.float32
    assert out[0, 0] == pytest.approx(2.0, rel=1e-6)
    assert out[1, 0] == 5.0
