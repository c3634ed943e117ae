"""torchrun's variables, per-rank addresses, and the exchange of a (one-member) group."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from fleetmind.core.errors import ConfigError
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.runtime.learner.collective import LearnerGroup, RankInfo, listen_address

TORCHRUN = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "MASTER_ADDR": "h0",
            "MASTER_PORT": "29500"}  # fmt: skip


def test_rank_comes_from_torchrun_variables() -> None:
    assert RankInfo.from_env({}) is None
    assert RankInfo.from_env({"WORLD_SIZE": "1"}) is None
    assert RankInfo.from_env(TORCHRUN) == RankInfo(3, 4, 1, "h0", 29500)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"MASTER_ADDR": ""}, "MASTER_ADDR is not set"),
        ({"WORLD_SIZE": ""}, "RANK, MASTER_ADDR, MASTER_PORT are set but WORLD_SIZE is not"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0"),
        ({"RANK": "4"}, "RANK=4 must lie in [0, WORLD_SIZE=4)"),
        ({"MASTER_PORT": "70000"}, "MASTER_PORT=70000 is not a port"),
        ({"LOCAL_RANK": "x"}, "LOCAL_RANK='x' must be an integer"),
    ],
)
def test_bad_torchrun_variables_are_named(change: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace(")", r"\)")):
        RankInfo.from_env({**TORCHRUN, **change})


def test_each_local_rank_listens_on_its_own_port() -> None:
    rank = RankInfo(3, 4, 1, "h0", 29500)
    assert listen_address("0.0.0.0:50051", rank) == "0.0.0.0:50052"
    assert listen_address("0.0.0.0:0", rank) == "0.0.0.0:0"
    assert listen_address("unix:/tmp/l.sock", rank) == "unix:/tmp/l.sock"
    assert listen_address("0.0.0.0:50051", None) == "0.0.0.0:50051"


def test_exchange_merges_statistics_and_episodes(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")  # init_method env://
    monkeypatch.setenv("MASTER_PORT", str(port))
    group = LearnerGroup.join(RankInfo(0, 1, 0, "127.0.0.1", port), timeout_s=30)
    try:
        delta = RunningMeanStd.from_data(np.arange(12.0).reshape(6, 2))
        shared, deltas = group.share(96, False, delta, [(10.0, 10), (22.0, 22)])
        assert shared.env_steps == 96
        assert not shared.stop
        assert shared.episodes == [(10.0, 10), (22.0, 22)]
        assert len(deltas) == 1
        np.testing.assert_allclose(deltas[0].mean, delta.mean)
        np.testing.assert_allclose(deltas[0].var, delta.var)
        assert deltas[0].count == 6
        shared, deltas = group.share(0, True, None, [])
        assert shared.stop
        assert shared.episodes == []
        assert deltas == []
        np.testing.assert_array_equal(group.all_reduce_sum(np.ones(3, np.float32)), np.ones(3))
        assert group.gradient_calls == 1
    finally:
        group.close()


def test_a_one_member_group_broadcasts_its_own_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    group = LearnerGroup.join(RankInfo(0, 1, 0, "127.0.0.1", port), timeout_s=30)
    try:
        assert group.broadcast_bytes(b"\x00\x01checkpoint\xff") == b"\x00\x01checkpoint\xff"
        assert group.broadcast_bytes(b"") == b""
    finally:
        group.close()


class _Broadcast:
    """A group member whose broadcast brings rank 0's payload (recorded as sent)."""

    def __init__(self, rank: int, from_rank_zero: bytes) -> None:
        self.rank = rank
        self.from_rank_zero = from_rank_zero
        self.sent: list[bytes] = []

    def broadcast_bytes(self, payload: bytes) -> bytes:
        self.sent.append(payload)
        return payload if self.rank == 0 else self.from_rank_zero


def test_every_learner_starts_from_rank_zeros_checkpoint() -> None:
    # on Kubernetes only learner 0's volume holds the run: a restarted group resumes
    # from learner 0's checkpoint whatever the others find on their own volumes
    import torch

    from fleetmind.algos.checkpoint import encode_state
    from fleetmind.runtime.learner.build import rank_zero_state

    state = {"env_steps": 4096, "version": 8, "learner": {"w": torch.arange(3.0)}}
    zero = _Broadcast(0, b"")
    assert rank_zero_state(state, zero) is state  # type: ignore[arg-type]
    assert zero.sent == [encode_state(state)]
    other = _Broadcast(1, encode_state(state))
    adopted = rank_zero_state(None, other)  # type: ignore[arg-type]
    assert adopted is not None
    assert (adopted["env_steps"], adopted["version"]) == (4096, 8)
    assert torch.equal(adopted["learner"]["w"], torch.arange(3.0))
    assert other.sent == [b""]
    # rank 0 starts a new run: so does everyone, whatever their volume holds
    assert rank_zero_state(state, _Broadcast(1, b"")) is None  # type: ignore[arg-type]
