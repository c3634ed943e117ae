"""The simulator's measured mean completion time against the E[T] model.

With the vehicles standing still and a load light enough that no task ever waits
(every CPU, radio and edge server is idle when a task reaches it), the model is
exact: the 95% confidence interval of the measured mean over many tasks lies
within 2% of E[T]. With queues the model is a lower bound.
"""

from __future__ import annotations

import math

import numpy as np

from fleetmind.envs.scenarios.offload.config import OffloadConfig
from fleetmind.envs.scenarios.offload.plans import plan_for_placement
from fleetmind.envs.scenarios.offload.simulator import CLOUD, EDGE, LOCAL, OffloadSimulator

# One vehicle per place (two local ones), each its own edge server user: with 0.5 s
# steps, at most one task per step per vehicle and every service shorter than a step
# (local CPUs 4 GHz, links >= ~50 Mbit/s), no task ever queues.
STATIONARY = OffloadConfig(
    vehicles=4, edge_servers=2, area_m=400.0, speed_mps=0.0, step_s=0.5,
    episode_steps=8_000, arrival_rates=(0.6, 1.2, 1.8, 0.9), local_cpu_hz=4e9,
)  # fmt: skip
PLACES = np.array([LOCAL, EDGE, CLOUD, LOCAL])


def _run(config: OffloadConfig, places: np.ndarray, seed: int) -> tuple[OffloadSimulator, float]:
    sim = OffloadSimulator(config)
    sim.reset(np.random.default_rng(seed))
    analytic = plan_for_placement(sim, places).expected_time()
    while not sim.done:
        sim.step(places)
    return sim, analytic


def test_measured_mean_agrees_with_expected_time_within_2_percent() -> None:
    sim, analytic = _run(STATIONARY, PLACES, seed=3)
    totals = sim.totals
    mean = totals.time_s / totals.tasks
    sd = math.sqrt(totals.time_sq_s2 / totals.tasks - mean**2)
    half = 1.96 * sd / math.sqrt(totals.tasks)
    assert totals.tasks > 15_000
    assert abs(mean - analytic) + half <= 0.02 * analytic, (mean, half, analytic)
    assert totals.placed.sum() == totals.tasks  # every placed task completed and counted


def test_every_place_of_the_plan_is_exercised() -> None:
    sim = OffloadSimulator(STATIONARY)
    sim.reset(np.random.default_rng(0))
    plan = plan_for_placement(sim, PLACES)
    m, k = STATIONARY.vehicles, STATIONARY.edge_servers
    assert plan.probabilities.tolist() == [0.6 / 4.5, 1.2 / 4.5, 1.8 / 4.5, 0.9 / 4.5]
    moved = plan.transfer_delays_s
    assert (moved[[0, 3]] == 0).all()  # local tasks move nowhere
    assert moved[1, m + sim.serving[1]] > 0  # the edge task moves to its serving server
    assert moved[2, m + k] > STATIONARY.backhaul_latency_s  # the cloud task crosses the backhaul


def test_queues_make_the_model_a_lower_bound() -> None:
    busy = OffloadConfig(
        vehicles=6, edge_servers=1, speed_mps=0.0, step_s=0.2, episode_steps=2_000,
        arrival_rate=4.0, edge_cpu_hz=1e10,
    )  # fmt: skip
    sim, analytic = _run(busy, np.full(6, EDGE), seed=1)
    measured = sim.totals.time_s / sim.totals.tasks
    assert measured > 1.2 * analytic
