"""The fault warning on the shop floor: dispatch by a rule, maintain a machine it warns of.

:class:`MachineMonitor` reads every machine's sensor on a regular grid (every
``maintenance_time``, from each renewal, while the machine is up), however
irregular the decision points are, and gives each machine's warning
probability from the fitted :class:`FaultPredictor`. The features are
dimensionless (readings, and age over the mean life) and the default breakdown
model of any instance is a scaled copy of the reference one (a life of 20 mean
operations, a reading every half operation), so one predictor, fitted on the
reference model, serves every instance with its default model.

:func:`dispatch_with_warning` runs a dispatching rule online and, at each
decision point, first maintains a free machine whose warning has reached the
threshold (or, to compare, one that has run a fixed interval since its renewal)::

    schedule, shop = dispatch_with_warning(instance, "mwkr", model, seed=7)
"""

from __future__ import annotations

import numpy as np

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
from fleetmind.envs.scenarios.jobshop.dispatch import Dispatcher
from fleetmind.envs.scenarios.jobshop.instance import JobShopInstance
from fleetmind.envs.scenarios.jobshop.maintenance import fitted_warning
from fleetmind.envs.scenarios.jobshop.rules import lookup_rule, rule_choice
from fleetmind.envs.scenarios.jobshop.schedule import Schedule
from fleetmind.envs.scenarios.jobshop.warning import FaultPredictor, life_features, reference_model

WARNING_SEEDS = (0, 20)
"""The seeds the shop floor's warning is fitted on (the reference model's lives)."""


class MachineMonitor:
    """Every machine's readings in its current life, and its warning probability now."""

    def __init__(self, shop: Dispatcher, predictor: FaultPredictor) -> None:
        if shop.model is None:
            raise ConfigError("a machine monitor needs a shop whose machines break down")
        self.shop, self.predictor = shop, predictor
        self.every = shop.model.maintenance_time
        m = shop.instance.num_machines
        self._renewed = [-1] * m
        self._readings: list[list[float]] = [[] for _ in range(m)]

    def probabilities(self) -> np.ndarray:
        """``[m]``: each machine's probability of failing soon (0 while it is down)."""
        out = np.zeros(self.shop.instance.num_machines)
        for machine in range(len(out)):
            out[machine] = self._probability(machine)
        return out

    def _probability(self, machine: int) -> float:
        shop, life = self.shop, self.shop.lives[machine]
        if life.renewed_at > shop.now or life.is_down(shop.now):
            return 0.0
        readings = self._readings[machine]
        if life.renewed_at != self._renewed[machine]:
            self._renewed[machine] = life.renewed_at
            readings.clear()
        done = life.renewed_at + self.every * len(readings)
        new = np.arange(done, min(shop.now, life.failure_at - 1) + 1, self.every)
        readings.extend(life.wear_series(new).tolist())
        if not readings:
            return 0.0
        window = self.predictor.config.window
        age = (shop.now - life.renewed_at) / life.model.mean_time_between_failures
        recent = np.array(readings[-window:])
        features = life_features(recent, np.full(len(recent), age), window)[-1]
        return float(self.predictor.probability(features))


def shop_predictor() -> FaultPredictor:
    """The warning fitted on the reference model's run-to-failure lives (once per process)."""
    return fitted_warning(reference_model(), WARNING_SEEDS)


def dispatch_with_warning(
    instance: JobShopInstance,
    rule: str,
    model: BreakdownModel,
    seed: int,
    threshold: float | None = None,
    interval: int | None = None,
) -> tuple[Schedule, Dispatcher]:
    """``rule`` online under ``model``'s breakdowns of ``seed``, maintaining each free
    machine whose warning reaches ``threshold`` (default: the warning's own), or, with
    ``interval``, each free machine that has run that long since its renewal instead."""
    priority = lookup_rule(rule)
    predictor = shop_predictor()
    limit = predictor.threshold if threshold is None else threshold
    shop = Dispatcher(instance, model, seed)
    monitor = MachineMonitor(shop, predictor)
    while not shop.done:
        if interval is None:
            due = monitor.probabilities() >= limit
        else:
            renewed = np.array([life.renewed_at for life in shop.lives])
            due = shop.now - renewed >= interval
        warned = np.flatnonzero(shop.maintainable() & due)
        if len(warned):
            shop.maintain(int(warned[0]))
        else:
            shop.dispatch(rule_choice(shop, priority))
    return shop.schedule(), shop
