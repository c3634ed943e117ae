"""The load shedder's decisions, on a fake clock: whom to refuse and for how long."""

from __future__ import annotations

import pytest

from fleetmind.serve.shedding import LoadShedder, ShedPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _shedder(policy: ShedPolicy | None = None, draw: float = 0.0) -> tuple[LoadShedder, Clock]:
    clock = Clock()
    return LoadShedder(policy or ShedPolicy(max_wait_s=0.1), clock, lambda: draw), clock


def _admit(shedder: LoadShedder, calls: int) -> list[int]:
    return [shedder.refuse() for _ in range(calls)]


def test_nothing_is_refused_while_calls_wait_less_than_the_target() -> None:
    shedder, clock = _shedder()
    for _ in range(10):
        assert set(_admit(shedder, 100)) == {0}
        clock.now += 0.05
        shedder.observe(0.09)
    assert shedder.share == 0.0


def test_the_share_refused_grows_while_calls_wait_too_long_faster_the_longer() -> None:
    policy = ShedPolicy(max_wait_s=0.1, gain=0.05)
    shedder, clock = _shedder(policy)
    shares = []
    for _ in range(4):
        _admit(shedder, 100)
        clock.now += 0.05
        shedder.observe(0.2)  # twice the target: one gain a measurement
        shares.append(shedder.share)
    assert shares == pytest.approx([0.05, 0.10, 0.15, 0.20])
    _admit(shedder, 100)
    clock.now += 0.05
    shedder.observe(0.5)  # five times the target: four gains at once
    assert shedder.share == pytest.approx(0.40)
    for _ in range(20):
        shedder.observe(10.0)
    assert shedder.share == policy.max_share
    # the share is a probability: the draw decides per call
    low, high = _shedder(policy, draw=0.05)[0], _shedder(policy, draw=0.95)[0]
    for s in (low, high):
        s.share, s.pushback_s = 0.5, 1.0
    assert low.refuse() > 0
    assert high.refuse() == 0


def test_far_beyond_capacity_callers_are_sent_away_for_longer() -> None:
    policy = ShedPolicy(max_wait_s=0.1, refusal_budget=0.1, max_pushback_s=10.0)
    shedder, clock = _shedder(policy)
    _admit(shedder, 100)
    clock.now += 0.05
    shedder.observe(0.2)  # 200 callers too many at 2,000/s
    first = shedder.pushback_s
    # kept to a tenth of the admitted calls: 200 / (0.1 * 2,000) = 1 s
    assert first == pytest.approx(1.0)
    refused = [ms for ms in _admit(shedder, 400) if ms]
    assert refused
    assert all(500 <= ms <= 1500 for ms in refused)  # jittered around 1 s
    # the callers sent away are still away: the next excess adds to them
    shedder._admitted = 100
    clock.now += 0.05
    shedder.observe(0.2)
    assert shedder.pushback_s > first
    assert shedder.pushback_s <= policy.max_pushback_s


def test_callers_sent_away_count_only_until_they_are_due_back() -> None:
    policy = ShedPolicy(max_wait_s=0.1, min_pushback_s=0.05)
    shedder, clock = _shedder(policy)
    _admit(shedder, 100)
    clock.now += 0.05
    shedder.observe(0.2)
    _admit(shedder, 50)
    assert len(shedder._away) == 50
    clock.now += 10 * policy.max_pushback_s  # every one of them is back
    shedder._admitted = 100
    shedder.observe(0.2)
    assert shedder._away == []


def test_the_share_decays_once_the_wait_is_back_under_the_target() -> None:
    shedder, clock = _shedder()
    for _ in range(5):
        _admit(shedder, 100)
        clock.now += 0.05
        shedder.observe(1.0)
    assert shedder.share == ShedPolicy().max_share
    shares = []
    for _ in range(25):
        clock.now += 0.05
        shedder.observe(0.0)  # nothing waits: one gain less a measurement
        shares.append(shedder.share)
    assert shares == sorted(shares, reverse=True)
    assert shares[0] == pytest.approx(ShedPolicy().max_share - 0.05)
    assert shares[-1] == 0.0


def test_an_idle_server_refuses_nothing() -> None:
    shedder, clock = _shedder()
    clock.now += 0.05
    shedder.observe(5.0)  # no call arrived: nobody to refuse
    assert shedder.share == 0.0
    assert shedder.refuse() == 0
