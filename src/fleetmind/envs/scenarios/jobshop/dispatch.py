"""The dispatching simulation behind the env and the rules: time moves from event to event.

A **decision point** is a time ``now`` at which some machine is free (up, idle,
not maintained) and some job waits for it (its previous operation has ended and
its next one needs that machine). The decision picks one waiting job, whose next
operation starts on its machine at ``now``, or maintains a free machine (only
when machines break down). Then the simulation settles every event at ``now``
and, when nothing is left to decide, moves to the next event: an operation ends,
a machine fails, a repair or maintenance ends.

Operations are not preempted. A failure during an operation aborts it: its work
is lost and it starts again from scratch after the repair (only its completed
run is in the schedule). Without breakdowns the schedules are non-delay: no
machine idles while a job waits for it.

    shop = Dispatcher(instance)             # or Dispatcher(instance, model, seed)
    while not shop.done:
        shop.dispatch(int(np.flatnonzero(shop.candidates())[0]))
    shop.schedule().makespan
"""

from __future__ import annotations

import numpy as np

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel, MachineLife
from fleetmind.envs.scenarios.jobshop.instance import JobShopInstance
from fleetmind.envs.scenarios.jobshop.schedule import Downtime, Operation, Schedule

_IDLE = -1


class Dispatcher:
    """One episode of dispatching ``instance``, with seeded breakdowns when ``model`` is given."""

    def __init__(
        self, instance: JobShopInstance, model: BreakdownModel | None = None, seed: int = 0
    ) -> None:
        self.instance = instance
        self.model = model
        n, m = instance.num_jobs, instance.num_machines
        self._n, self._m, self._ops = n, m, instance.num_ops
        self._jobs = np.arange(n)
        self.now = 0
        self.next_op = np.zeros(n, dtype=np.int64)
        """Index of each job's next operation not yet completed (``num_ops`` when done)."""
        self.job_ready = np.zeros(n, dtype=np.int64)
        """When each job's previous operation ended (or was aborted)."""
        self.running_job = np.full(m, _IDLE, dtype=np.int64)
        """The job whose operation each machine runs, -1 when none."""
        self.running_start = np.zeros(m, dtype=np.int64)
        self.running_end = np.zeros(m, dtype=np.int64)
        self.maintained_until = np.zeros(m, dtype=np.int64)
        self.lives = [MachineLife(model, seed, k) for k in range(m)] if model else []
        self.aborted = 0
        """Operations that a failure aborted so far."""
        self._operations: list[Operation] = []
        self._downtime: list[Downtime] = []
        self._failure_logged = [-1] * m
        self._left = n * self._ops
        """Operations not yet completed."""
        self._next_machine = instance.machines[:, 0].copy()
        """The machine of each job's next operation (its last one once done)."""
        self.advance()

    @property
    def done(self) -> bool:
        return self._left == 0

    def next_machines(self) -> np.ndarray:
        """``[n]`` the machine of each job's next operation (its last one once done)."""
        return self._next_machine

    def busy_jobs(self) -> np.ndarray:
        """``[n]`` bool: the jobs whose operation runs now."""
        busy = np.zeros(self._n, dtype=bool)
        busy[self.running_job[self.running_job != _IDLE]] = True
        return busy

    def machine_down(self) -> np.ndarray:
        """``[m]`` bool: failed and under repair now."""
        return np.array([life.is_down(self.now) for life in self.lives], dtype=bool) if (
            self.lives
        ) else np.zeros(self._m, dtype=bool)  # fmt: skip

    def machine_free(self) -> np.ndarray:
        """``[m]`` bool: up, idle and not maintained now."""
        idle: np.ndarray = (self.running_job == _IDLE) & (self.maintained_until <= self.now)
        return idle & ~self.machine_down() if self.lives else idle

    def candidates(self) -> np.ndarray:
        """``[n]`` bool: the jobs whose next operation can start now."""
        waiting = (self.next_op < self._ops) & (self.job_ready <= self.now) & ~self.busy_jobs()
        ready: np.ndarray = waiting & self.machine_free()[self._next_machine]
        return ready

    def maintainable(self) -> np.ndarray:
        """``[m]`` bool: the machines a maintenance may start on now (none without breakdowns)."""
        return self.machine_free() if self.model else np.zeros(self._m, bool)

    def dispatch(self, job: int) -> None:
        """Start ``job``'s next operation now; ConfigError when it cannot start."""
        self.dispatch_all([job])

    def dispatch_all(self, jobs: list[int]) -> None:
        """Start the next operations of ``jobs`` now, each on its own machine: what
        dispatching them one after the other does, settled once."""
        ready = self.candidates()
        taken = set()
        for job in jobs:
            if not (0 <= job < self._n and ready[job]):
                raise ConfigError(f"job {job} cannot start an operation at time {self.now}")
            index = int(self.next_op[job])
            machine = int(self.instance.machines[job, index])
            if machine in taken:
                raise ConfigError(f"job {job} waits for machine {machine}, already started now")
            taken.add(machine)
            self.running_job[machine] = job
            self.running_start[machine] = self.now
            self.running_end[machine] = self.now + int(self.instance.durations[job, index])
        self.advance()

    def maintain(self, machine: int) -> None:
        """Take a free ``machine`` down for maintenance now; its next life starts after."""
        if self.model is None or not self.maintainable()[machine]:
            raise ConfigError(f"machine {machine} cannot be maintained at time {self.now}")
        end = self.now + self.model.maintenance_time
        self.maintained_until[machine] = end
        self._downtime.append(Downtime(machine, self.now, end, "maintenance"))
        self.lives[machine].renew(end)
        self.advance()

    def advance(self) -> None:
        """Settle the events at ``now``; while nothing can be decided, move to the next event."""
        while True:
            self._settle()
            if self.done or self.candidates().any():
                return
            self.now = self._next_event()

    def _settle(self) -> None:
        if not self.lives:  # only operations end: visit the machines whose one has
            running = self.running_job != _IDLE
            for machine in np.flatnonzero(running & (self.running_end <= self.now)).tolist():
                self._complete(machine, int(self.running_job[machine]))
            return
        for machine in range(self._m):
            life = self.lives[machine] if self.lives else None
            job = int(self.running_job[machine])
            end = int(self.running_end[machine])
            if job != _IDLE and life is not None and life.failure_at < end:
                if life.failure_at <= self.now:  # aborted: the work is lost
                    self.running_job[machine] = _IDLE
                    self.job_ready[job] = life.failure_at
                    self.aborted += 1
            elif job != _IDLE and end <= self.now:
                self._complete(machine, job)
            if life is not None:
                self._log_failures(machine, life)

    def _complete(self, machine: int, job: int) -> None:
        """``machine``'s operation of ``job`` has ended: record it, free both."""
        index = int(self.next_op[job])
        end = int(self.running_end[machine])
        start = int(self.running_start[machine])
        self._operations.append(Operation(job, index, machine, start, end))
        self.running_job[machine] = _IDLE
        self.next_op[job] += 1
        self.job_ready[job] = end
        self._left -= 1
        self._next_machine[job] = self.instance.machines[job, min(index + 1, self._ops - 1)]

    def _log_failures(self, machine: int, life: MachineLife) -> None:
        while life.failure_at <= self.now:
            if self._failure_logged[machine] != life.failure_at:
                self._downtime.append(Downtime(machine, life.failure_at, life.repair_end))
                self._failure_logged[machine] = life.failure_at
            if life.repair_end > self.now:
                return
            life.renew(life.repair_end)

    def _next_event(self) -> int:
        if not self.lives:
            ends = self.running_end[self.running_job != _IDLE]
            ahead = np.concatenate([ends, self.maintained_until])
            ahead = ahead[ahead > self.now]
            if len(ahead):
                return int(ahead.min())
        times = [int(t) for t in self.running_end[self.running_job != _IDLE]]
        times += [int(t) for t in self.maintained_until if t > self.now]
        for life in self.lives:
            times += [t for t in (life.failure_at, life.repair_end) if t > self.now]
        later = [t for t in times if t > self.now]
        if not later:  # cannot happen while jobs remain: some event always lies ahead
            raise RuntimeError(f"dispatching stalled at time {self.now}")
        return min(later)

    def remaining_work(self) -> np.ndarray:
        """``[n]`` the processing time of each job's operations not yet completed."""
        ops = np.arange(self.instance.num_ops)[None, :]
        work: np.ndarray = (self.instance.durations * (ops >= self.next_op[:, None])).sum(axis=1)
        return work

    def schedule(self) -> Schedule:
        """The operations completed and the downtime seen so far."""
        return Schedule(list(self._operations), list(self._downtime))
