"""Machines that break down, and show it coming.

Each machine lives from renewal to renewal: after a repair or a maintenance it
runs for a **life** drawn from a Weibull distribution (``weibull_shape`` 1 is the
exponential; above 1 a machine wears out, the failure more likely the older it
is), then fails and is repaired for an exponential **repair time**. Failures
happen in calendar time (a machine ages whether it works or waits), so a seed
fixes every machine's downtime in advance, which is what a clairvoyant solver
is given.

Its **wear** signal is what a sensor on the machine reads: the fraction of the
current life that has passed, plus Gaussian noise, so it drifts towards 1 before
the failure. **Maintenance** takes the machine down for ``maintenance_time`` and
renews it: the wear resets and a fresh life starts.

Each machine draws from its own generator (``seed``, machine), so maintaining one
machine leaves every other machine's failures as they were::

    model = BreakdownModel(mean_time_between_failures=800, mean_repair_time=60)
    machine = MachineLife(model, seed=7, machine=3)
    machine.failure_at, machine.repair_end     # the first failure and its repair
    machine.wear(now)                          # the sensor reading
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.instance import JobShopInstance


@dataclass(frozen=True)
class BreakdownModel:
    """How every machine fails, is repaired and is maintained (time in the instance's units)."""

    mean_time_between_failures: float
    """Mean life from a renewal to the next failure (> 0)."""
    mean_repair_time: float
    """Mean repair time after a failure (> 0); each is at least 1."""
    weibull_shape: float = 2.0
    """Shape of the life distribution: 1 exponential, above 1 wear-out (> 0)."""
    maintenance_time: int = 10
    """How long a maintenance takes the machine down (>= 1)."""
    wear_noise: float = 0.05
    """Standard deviation of the wear sensor's Gaussian noise (>= 0)."""

    def __post_init__(self) -> None:
        for name in ("mean_time_between_failures", "mean_repair_time", "weibull_shape"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                rate = "" if name == "weibull_shape" else " (the rate 1/mean would not be positive)"
                raise ConfigError(f"breakdown model: {name} must be positive, got {value}{rate}")
        if self.maintenance_time < 1:
            raise ConfigError(
                f"breakdown model: maintenance_time must be >= 1, got {self.maintenance_time}"
            )
        if not math.isfinite(self.wear_noise) or self.wear_noise < 0:
            raise ConfigError(f"breakdown model: wear_noise must be >= 0, got {self.wear_noise}")

    @classmethod
    def for_instance(
        cls, instance: JobShopInstance, mtbf: float | None = None, mttr: float | None = None
    ) -> BreakdownModel:
        """The default model of ``instance``: a machine fails about once per 20 mean
        operations and is repaired in about 2 (``mtbf`` and ``mttr`` override these)."""
        mean = max(float(instance.durations.mean()), 1.0)
        return cls(
            mean_time_between_failures=20 * mean if mtbf is None else mtbf,
            mean_repair_time=2 * mean if mttr is None else mttr,
            maintenance_time=max(1, round(mean / 2)),
        )


class MachineLife:
    """One machine's renewals, failures and repairs, drawn lazily from its own seed."""

    def __init__(self, model: BreakdownModel, seed: int, machine: int) -> None:
        self.model = model
        self._rng = np.random.default_rng([seed, machine])
        self._noise = np.random.default_rng([seed, machine, 1])
        self._weibull_scale = model.mean_time_between_failures / math.gamma(
            1 + 1 / model.weibull_shape
        )
        self.renew(0)

    def renew(self, now: int) -> None:
        """Start a fresh life at ``now`` (after a repair or a maintenance)."""
        life = self._weibull_scale * self._rng.weibull(self.model.weibull_shape)
        repair = self._rng.exponential(self.model.mean_repair_time)
        self.renewed_at = now
        self.failure_at = now + max(1, math.ceil(life))
        """When the current life ends in a failure."""
        self.repair_end = self.failure_at + max(1, math.ceil(repair))
        """When that failure's repair ends and the next life starts."""

    def advance(self, now: int) -> None:
        """Move past every failure whose repair has ended by ``now``."""
        while self.repair_end <= now:
            self.renew(self.repair_end)

    def is_down(self, now: int) -> bool:
        """True while the machine is failed and under repair at ``now``."""
        return self.failure_at <= now < self.repair_end

    def wear(self, now: int) -> float:
        """The noisy sensor reading: 0 right after a renewal, about 1 at the failure."""
        span = max(self.failure_at - self.renewed_at, 1)
        progress = min(max((now - self.renewed_at) / span, 0.0), 1.0)
        return float(progress + self.model.wear_noise * self._noise.standard_normal())


def breakdown_intervals(
    model: BreakdownModel, seed: int, num_machines: int, until: int
) -> list[list[tuple[int, int]]]:
    """Each machine's repair intervals ``[failure, repair end)`` that start before
    ``until``, with no maintenance: the downtime a clairvoyant solver is given."""
    out: list[list[tuple[int, int]]] = []
    for machine in range(num_machines):
        life = MachineLife(model, seed, machine)
        intervals = []
        while life.failure_at < until:
            intervals.append((life.failure_at, life.repair_end))
            life.renew(life.repair_end)
        out.append(intervals)
    return out
