"""A trained dispatcher on a job-shop instance: greedy, online under breakdowns, or sampled.

A dispatcher is a fleetmind run trained on one of the queue scenarios
(``fleetmind/jobshop-queues-*``, :mod:`.slots`): its observation has the same
length for every instance size, so one run schedules any ``n x m``.

* :meth:`LearnedDispatcher.greedy` takes the policy's most likely slot at every
  decision (online: under breakdowns it sees a failure when it happens);
* :func:`served_decider` asks a dispatcher served with ``fleetmind serve`` for
  each decision: the shop floor's closed loop, one observation per call (the
  queue's fixed slots are the served tensor contract: ``[1, OBSERVATION_SIZE]``
  FP32 in, ``action`` out), the same schedule as the local agent;
* :meth:`LearnedDispatcher.sample` draws whole schedules from the policy (at a
  temperature), many episodes in lockstep with one batched decision per step,
  for a time budget, and keeps the shortest (the greedy schedule included): a
  static instance only, since under breakdowns a sampled schedule would have to
  know the failures.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Protocol

import numpy as np

from fleetmind.core.agent import Agent
from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
from fleetmind.envs.scenarios.jobshop.instance import JobShopInstance
from fleetmind.envs.scenarios.jobshop.schedule import Schedule
from fleetmind.envs.scenarios.jobshop.slots import (
    OBSERVATION_SIZE,
    Decide,
    SlotDispatch,
    dispatch_slots,
)


class ActClient(Protocol):
    """What :func:`served_decider` needs of a client (:class:`fleetmind.serve.Client`)."""

    def act(self, model: str, observation: np.ndarray) -> np.ndarray: ...


logger = logging.getLogger(__name__)

QUEUE_ID_PREFIX = "fleetmind/jobshop-queues-"
SAMPLING_TEMPERATURE = 3.0
"""Flatter than the policy: the best of a few dozen schedules gains more from
variety than from likelihood (tuned on random 15x15 shops, never on Taillard's:
the best of 64 over the lower bound was 1.410, 1.399, 1.396, 1.406 at 1, 2, 3, 4)."""


@dataclass
class Sampled:
    """The best of the schedules drawn within a budget."""

    schedule: Schedule
    samples: int
    """Schedules drawn, by every worker (the greedy one not counted)."""
    greedy_makespan: int
    workers: int = 1
    """Processes whose draws were pooled."""


Drawn = tuple[Schedule | None, int]
"""The shortest schedule one process drew (None: none finished) and how many it drew."""


class LearnedDispatcher:
    """A dispatcher policy: one slot per decision, from one flat observation."""

    def __init__(self, agent: Agent, name: str = "agent", env_id: str | None = None) -> None:
        if env_id is not None and not env_id.startswith(QUEUE_ID_PREFIX):
            raise ConfigError(
                f"{name} was trained on {env_id}, not a job-shop dispatcher; train one with "
                f"`fleetmind train {QUEUE_ID_PREFIX}15x15`"
            )
        shape = tuple(agent.observation_space.shape or ())
        if shape != (OBSERVATION_SIZE,):
            raise ConfigError(
                f"{name} observes {shape}, not a job-shop queue ({OBSERVATION_SIZE},); "
                f"train it on a {QUEUE_ID_PREFIX}* scenario"
            )
        self.agent = agent
        self.name = name

    def decide(self, observation: np.ndarray) -> int:
        """The most likely slot."""
        return int(self.agent.act(observation))

    def greedy(
        self, instance: JobShopInstance, model: BreakdownModel | None = None, seed: int = 0
    ) -> Schedule:
        """The schedule of the most likely slot at every decision (online under ``model``'s
        breakdowns of ``seed`` when given)."""
        return dispatch_slots(instance, self.decide, model, seed)

    def sample(
        self,
        instance: JobShopInstance,
        budget_s: float,
        batch: int = 32,
        seed: int = 0,
        temperature: float = SAMPLING_TEMPERATURE,
        workers: int | None = None,
    ) -> Sampled:
        """The shortest of the greedy schedule and the schedules drawn within ``budget_s``
        seconds, the greedy one's time included, from the policy's probabilities raised
        to ``1 / temperature``.

        ``workers`` processes draw (default: every core this process may run on; the
        others are forked, so call it from a process without gRPC channels or servers
        open), each ``batch`` episodes in lockstep, each replaced when it ends; those
        unfinished at the deadline are dropped.
        """
        if not budget_s > 0 or batch < 1 or not temperature > 0:
            raise ConfigError(
                "sampling needs a positive budget, batch and temperature: "
                f"{budget_s}, {batch}, {temperature}"
            )
        if workers is not None and workers < 1:
            raise ConfigError(f"sampling needs at least one worker, got {workers}")
        deadline = time.perf_counter() + budget_s
        best = self.greedy(instance)
        greedy_makespan = best.makespan
        if SlotDispatch(instance).done:  # no queue ever holds two jobs: one schedule exists
            return Sampled(best, 0, greedy_makespan)
        count = workers or len(os.sched_getaffinity(0))
        seeds = np.random.SeedSequence(seed).spawn(count)
        helpers = [
            self._fork(partial(self._draw, instance, deadline, batch, s, temperature))
            for s in seeds[1:]
        ]
        drawn = [self._draw(instance, deadline, batch, seeds[0], temperature)]
        for receiver, process in helpers:
            try:
                if receiver.poll(max(deadline - time.perf_counter(), 0.0) + 30.0):
                    drawn.append(receiver.recv())
            except (EOFError, OSError):
                logger.warning("a sampling process ended without its schedules")
            process.join(timeout=5)
        samples = 0
        for schedule, count_drawn in drawn:
            samples += count_drawn
            if schedule is not None and schedule.makespan < best.makespan:
                best = schedule
        return Sampled(best, samples, greedy_makespan, len(drawn))

    @staticmethod
    def _fork(draw: Callable[[], Drawn]) -> tuple[Connection, BaseProcess]:
        """Run ``draw`` in a forked process; the end of a pipe its result comes on."""
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)

        def run() -> None:
            try:
                drawn = draw()
            except Exception as exc:  # the parent keeps what the others drew
                drawn = (None, 0)
                logger.warning("a sampling process failed: %s", exc)
            sender.send(drawn)
            sender.close()

        process = context.Process(target=run, daemon=True)
        process.start()
        sender.close()
        return receiver, process

    def _draw(
        self,
        instance: JobShopInstance,
        deadline: float,
        batch: int,
        seed: np.random.SeedSequence,
        temperature: float,
    ) -> Drawn:
        """The shortest schedule drawn until ``deadline`` (``time.perf_counter``, the
        same clock in every process) and how many were drawn."""
        rng = np.random.default_rng(seed)
        best: Schedule | None = None
        samples = 0
        episodes = [SlotDispatch(instance) for _ in range(batch)]
        while time.perf_counter() < deadline:
            obs = np.stack([e.observe() for e in episodes])
            probs = self.agent.decide_batch(obs).outputs["action_probs"] ** (1 / temperature)
            probs /= probs.sum(axis=1, keepdims=True)
            draws = (rng.random(len(episodes))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
            for k, (episode, slot) in enumerate(zip(episodes, draws, strict=True)):
                episode.choose(int(slot))
                if episode.done:  # a schedule drawn: keep the shortest, start another
                    samples += 1
                    if best is None or episode.schedule().makespan < best.makespan:
                        best = episode.schedule()
                    episodes[k] = SlotDispatch(instance)
        return best, samples


def served_decider(client: ActClient, model: str) -> Decide:
    """Decisions from the dispatcher ``model`` served behind ``client``, one call each::

    with Client("shopfloor:8001", token=token) as client:
        schedule = dispatch_slots(instance, served_decider(client, "dispatcher"))
    """

    def decide(observation: np.ndarray) -> int:
        return int(client.act(model, observation))

    return decide
