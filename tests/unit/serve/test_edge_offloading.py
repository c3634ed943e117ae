"""The edge client's estimates and decision rule, with a fake clock and fake places."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from fleetmind.core.errors import ConfigError, UnavailableError
from fleetmind.envs.scenarios.offload.expected_time import expected_completion_time
from fleetmind.serve.edge_estimates import (
    LOCAL,
    MovingAverage,
    PlaceEstimate,
    choose,
    single_task_time,
)
from fleetmind.serve.edge_remote import RemoteAnswer
from fleetmind.serve.offloading import EdgeConfig, OffloadingClient

SHAPE = (4,)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeLocal:
    observation_shape = SHAPE

    def __init__(self, clock: Clock, compute_s: float) -> None:
        self.clock, self.compute_s, self.calls = clock, compute_s, 0

    def act(self, observation: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.clock.now += self.compute_s
        return np.array(0)


class FakeRemote:
    """Answers action 1 after ``network_s + server_s``; while ``down``, fails at the timeout."""

    def __init__(
        self, clock: Clock, network_s: float, server_s: float, name: str = "r", shape=SHAPE
    ) -> None:
        self.clock, self.network_s, self.server_s = clock, network_s, server_s
        self.name, self.shape = name, shape
        self.down = False
        self.unreachable = False
        self.calls = 0
        self.connections = 1

    def observation_shape(self, timeout_s: float) -> tuple[int, ...]:
        if self.unreachable:
            raise UnavailableError("connection refused")
        return self.shape

    def act(self, observation: np.ndarray, timeout_s: float) -> RemoteAnswer:
        self.calls += 1
        if self.down or self.unreachable:
            self.clock.now += timeout_s
            raise UnavailableError("deadline exceeded")
        self.clock.now += self.network_s + self.server_s
        return RemoteAnswer(np.array(1), self.server_s)

    def reconnected(self) -> FakeRemote:
        self.connections += 1
        return self

    def close(self) -> None:
        pass


def make(local_s: float, *remotes: FakeRemote, clock: Clock, **config: float) -> OffloadingClient:
    settings = {"deadline_s": 0.2, **config}
    return OffloadingClient(
        FakeLocal(clock, local_s), remotes, EdgeConfig(**settings), clock=clock, probe=False
    )  # type: ignore[arg-type]


def test_single_task_time_is_the_models_expected_time() -> None:
    # Node 2 of 3: t_2 = 0.004 s of compute, t_02 = 0.03 s of network.
    assert single_task_time(2, 3, 0.004, 0.03) == pytest.approx(0.034)
    assert single_task_time(2, 3, 0.004, 0.03) == expected_completion_time(
        [1.0], [0.004], [[0.0, 0.0, 0.03]]
    )
    assert single_task_time(LOCAL, 3, 0.01, 5.0) == pytest.approx(0.01)  # t_00 is no move


def test_moving_average_starts_at_the_first_sample_then_smooths() -> None:
    average = MovingAverage(0.25)
    assert math.isnan(average.value)
    assert average.add(8.0) == 8.0
    assert average.add(0.0) == 6.0
    average.reset(1.0)
    assert average.value == 1.0
    with pytest.raises(ConfigError, match="within"):
        MovingAverage(0.0)


def _places(local_s: float, *remote_s: float) -> list[PlaceEstimate]:
    places = [PlaceEstimate(n, 1 + len(remote_s), 0.5) for n in range(1 + len(remote_s))]
    places[0].record(local_s, 0.0, 0.0)
    for place, seconds in zip(places[1:], remote_s, strict=True):
        place.record(0.001, seconds - 0.001, 0.0)
    return places


def test_choose_takes_the_least_expected_time_that_is_in_time() -> None:
    places = _places(0.010, 0.030, 0.004)
    assert choose(places, [True, True, True], 0.1, 1.5).node == 2
    assert choose(places, [True, True, False], 0.1, 1.5).node == LOCAL
    late = choose(_places(0.010, 0.004), [True, True], 0.012, 1.5)
    assert (late.node, late.reason) == (LOCAL, "deadline")
    down = choose(places, [True, False, False], 0.1, 1.5)
    assert (down.node, down.reason) == (LOCAL, "no_remote")
    assert choose(places, [True, True, True], 0.1, 1.5).remote_timeout_s == pytest.approx(0.085)


@pytest.mark.parametrize(("network_s", "place"), [(0.002, "r"), (0.05, "local")])
def test_runs_where_expected_time_is_least(network_s: float, place: str) -> None:
    clock = Clock()
    client = make(0.02, FakeRemote(clock, network_s, 0.001), clock=clock)
    decisions = [client.decide(np.zeros(4)) for _ in range(5)]
    assert {d.place for d in decisions} == {place}
    assert decisions[0].latency_s == pytest.approx(0.02 if place == "local" else network_s + 0.001)
    expected = client.metrics.registry.get_sample_value(
        "fleetmind_edge_expected_time_seconds", {"place": "r"}
    )
    assert expected == pytest.approx(network_s + 0.001)


def test_a_failed_remote_call_falls_back_then_the_prober_brings_it_back() -> None:
    clock = Clock()
    remote = FakeRemote(clock, 0.002, 0.001)
    client = make(0.02, remote, clock=clock)
    remote.down = True
    first = client.decide(np.zeros(4))
    assert (first.place, first.reason, int(first.action)) == ("local", "fallback", 0)
    assert first.latency_s <= 0.2 + 1e-9  # the remote's deadline left room for local
    client.decide(np.zeros(4))  # second failure in a row: down
    assert client.up == [True, False]
    calls = remote.calls
    later = client.decide(np.zeros(4))
    assert (later.place, later.reason, remote.calls) == ("local", "no_remote", calls)
    client.probe_once()
    assert client.up == [True, False]  # still down
    remote.down = False
    clock.now += 1.0
    client.probe_once()
    assert client.up == [True, True]
    assert remote.connections == 3  # each probe of a down target used a new connection
    assert client.decide(np.zeros(4)).place == "r"
    sample = client.metrics.registry.get_sample_value
    assert sample("fleetmind_edge_fallbacks_total", {"target": "r", "cause": "late"}) == 2
    assert sample("fleetmind_edge_decisions_total", {"place": "local", "reason": "fallback"}) == 2
    assert sample("fleetmind_edge_link_up", {"target": "r"}) == 1


def test_the_first_decision_after_a_return_measures_the_target_as_decisions_see_it() -> None:
    # On a weak edge the prober's calls compete with local decisions for the CPU and
    # look slower than the remote is: the next decision goes there and sets its time.
    clock = Clock()
    remote = FakeRemote(clock, 0.002, 0.001)
    client = make(0.02, remote, clock=clock)
    remote.down = True
    client.decide(np.zeros(4))
    client.decide(np.zeros(4))
    assert client.up == [True, False]
    remote.down, remote.network_s = False, 0.05  # as the throttled prober sees it
    clock.now += 1.0
    client.probe_once()
    assert client.up == [True, True]
    remote.network_s = 0.002  # as a decision, with the edge otherwise idle, sees it
    first, second = client.decide(np.zeros(4)), client.decide(np.zeros(4))
    assert (first.place, first.reason) == ("r", "returned")
    assert (second.place, second.reason) == ("r", "faster")
    remote.down = True  # a return that fails is an ordinary fallback
    client.decide(np.zeros(4))
    client.decide(np.zeros(4))
    remote.down, remote.network_s = False, 0.05
    clock.now += 1.0
    client.probe_once()
    late = client.decide(np.zeros(4))  # measured slow again: back to local after it
    assert (late.place, late.reason) == ("r", "returned")
    assert client.decide(np.zeros(4)).place == "local"


def test_the_prober_measures_idle_targets_and_the_idle_local_agent() -> None:
    clock = Clock()
    remote = FakeRemote(clock, 0.05, 0.001)
    client = make(0.02, remote, clock=clock, local_refresh_s=1.0, smoothing=0.2)
    assert client.decide(np.zeros(4)).place == "local"
    remote.network_s = 0.001  # the link got faster while the client decided locally
    for _ in range(10):
        clock.now += 1.1  # past idle_probe_s
        client.probe_once()
    assert client.decide(np.zeros(4)).place == "r"
    local = client._local
    calls = local.calls  # type: ignore[attr-defined]
    clock.now += 1.5
    client.probe_once()
    assert local.calls == calls + 1  # type: ignore[attr-defined]


def test_an_unreachable_target_at_start_starts_on_local_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    remote = FakeRemote(clock, 0.001, 0.001, name="10.9.9.9:8001")
    remote.unreachable = True
    with caplog.at_level(logging.WARNING):
        client = make(0.02, remote, clock=clock)
    assert "remote 10.9.9.9:8001 is unreachable at start" in caplog.text
    assert "deciding locally until it answers" in caplog.text
    assert client.decide(np.zeros(4)).place == "local"
    remote.unreachable = False
    client.probe_once()
    assert client.decide(np.zeros(4)).place == "10.9.9.9:8001"


def test_a_target_of_another_observation_shape_is_refused_at_start() -> None:
    clock = Clock()
    remote = FakeRemote(clock, 0.001, 0.001, name="10.0.0.5:8001", shape=(6,))
    with pytest.raises(ConfigError) as info:
        make(0.02, remote, clock=clock)
    assert "remote 10.0.0.5:8001 takes observations of shape [6]" in str(info.value)
    assert "the local agent takes [4]" in str(info.value)


def test_a_target_of_another_shape_that_appears_later_is_never_used(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    remote = FakeRemote(clock, 0.001, 0.001, shape=(6,))
    remote.unreachable = True
    client = make(0.02, remote, clock=clock)
    remote.unreachable = False
    with caplog.at_level(logging.ERROR):
        client.probe_once()
        client.probe_once()
    assert caplog.text.count("takes observations of shape [6]") == 1
    assert client.up == [True, False]


def test_bad_settings_and_observations_are_refused() -> None:
    with pytest.raises(ConfigError, match="deadline_s=0"):
        EdgeConfig(deadline_s=0)
    clock = Clock()
    client = make(0.02, FakeRemote(clock, 0.001, 0.001), clock=clock)
    with pytest.raises(ConfigError, match=r"shape \[3\]"):
        client.decide(np.zeros(3))
