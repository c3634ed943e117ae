"""Machines that break down, and show it coming.

Each machine lives from renewal to renewal: after a repair or a maintenance it
runs for a **life** drawn from a Weibull distribution (``weibull_shape`` 1 is the
exponential; above 1 a machine wears out, the failure more likely the older it
is), then fails and is repaired for an exponential **repair time**. Failures
happen in calendar time (a machine ages whether it works or waits), so a seed
fixes every machine's downtime in advance, which is what a clairvoyant solver
is given.

Its **wear** signal is what a vibration sensor on the machine reads. It does not
know the life; it follows the P-F curve of condition monitoring: a slow ageing
term (``ageing_gain`` times the time since the renewal over the mean life), and,
once a fault has started, a degradation that grows quadratically over the
**P-F interval** before the failure (drawn per life, uniform over ``0.5 .. 1.5``
times ``warning_fraction`` of the mean life) to ``1 - ageing_gain`` at the
failure; plus Gaussian noise (``wear_noise``). So the signal is flat and noisy
for most of a life and drifts upward only shortly before a failure, later and
harder to see for a fault that develops fast. Each life also gives the sensor a
calibration offset (Gaussian, as large as the noise), so a level alone is a
weaker clue than a rise. **Maintenance** takes the machine
down for ``maintenance_time`` and renews it: the wear resets and a fresh life
starts.

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
    wear_noise: float = 0.1
    """Standard deviation of the wear sensor's Gaussian noise (>= 0)."""
    warning_fraction: float = 0.15
    """Mean P-F interval (a fault's visible drift before its failure) over the mean life (> 0)."""
    ageing_gain: float = 0.2
    """Share of the wear signal that only tracks age (0 .. 1); the rest is the fault's drift."""

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
        if not math.isfinite(self.warning_fraction) or self.warning_fraction <= 0:
            raise ConfigError(
                f"breakdown model: warning_fraction must be positive, got {self.warning_fraction}"
            )
        if not 0 <= self.ageing_gain <= 1:
            raise ConfigError(
                f"breakdown model: ageing_gain must be in 0..1, got {self.ageing_gain}"
            )

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
        self._faults = np.random.default_rng([seed, machine, 2])
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
        mean_pf = self.model.warning_fraction * self.model.mean_time_between_failures
        self.warning_interval = max(1.0, mean_pf * self._faults.uniform(0.5, 1.5))
        """The P-F interval: how long before the failure the fault's drift starts."""
        self.sensor_offset = self.model.wear_noise * self._faults.standard_normal()
        """The sensor's calibration offset in this life (it is refitted at each renewal)."""

    def advance(self, now: int) -> None:
        """Move past every failure whose repair has ended by ``now``."""
        while self.repair_end <= now:
            self.renew(self.repair_end)

    def is_down(self, now: int) -> bool:
        """True while the machine is failed and under repair at ``now``."""
        return self.failure_at <= now < self.repair_end

    def wear(self, now: int) -> float:
        """The noisy sensor reading: about 0 after a renewal, about 1 at the failure."""
        return float(self.wear_series(np.array([now]))[0])

    def wear_series(self, times: np.ndarray) -> np.ndarray:
        """The readings at ``times`` (within the current life), one noise draw each."""
        model = self.model
        age = np.maximum(times - self.renewed_at, 0) / model.mean_time_between_failures
        fault = 1 - np.maximum(self.failure_at - times, 0) / self.warning_interval
        clean = model.ageing_gain * np.minimum(age, 1.0) + self.sensor_offset
        clean += (1 - model.ageing_gain) * np.maximum(fault, 0.0) ** 2
        readings: np.ndarray = clean + model.wear_noise * self._noise.standard_normal(len(times))
        return readings


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
