"""The numpy core of the offloading scenario: tasks, queues, uploads, servers.

Time advances in steps of ``step_s`` seconds (one env step); within a step every
task's timing is exact, in continuous time. At each step:

1. **Placement.** Each vehicle with a new task (it arose at the start of the step)
   places it: ``LOCAL`` (its own CPU), ``EDGE`` (its serving edge server, the one
   it has the best link to) or ``CLOUD`` (through the serving edge server and the
   backhaul).
   - Local: the vehicle's CPU runs its tasks one at a time in order; the task
     starts when the CPU is free and takes ``cycles / local_cpu_hz``.
   - Edge and cloud: the vehicle's radio uploads its tasks one at a time in order,
     at the rate of its link when the task is placed (``input_bits / rate``).
     A cloud task then crosses the backhaul (``backhaul_latency_s + input_bits /
     backhaul_rate_bps``) and runs at once (``cycles / cloud_cpu_hz``).
2. **Edge servers.** Each edge server runs the tasks uploaded to it one at a time,
   first come first served in the order their uploads *finish*. Every task placed
   later is uploaded after the end of the current step, so at the end of each step
   the queue order of every upload finished by then is final; those tasks get
   their finish times then (``cycles / edge_cpu_hz`` of service each).
3. **Completion.** A task completes at its finish time; the step in which that
   happens credits its cost to the vehicle that produced it::

       cost = completion time + miss_penalty_s * (missed deadline) + energy_weight * energy

   where the on-board energy is ``kappa * local_cpu_hz**2 * cycles`` (local) or
   ``tx_power_w * upload time`` (edge, cloud). Results travel back for free.
4. Vehicles move, links are re-measured, edge servers report their backlog
   (every ``report_period_s``), and new tasks arise.

At the end of the episode every placed task is run to completion (nothing new
arrives) and counted, so the episode's measures cover every task placed in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fleetmind.envs.scenarios.offload.config import OffloadConfig
from fleetmind.envs.scenarios.offload.radio import edge_positions, move, random_motion, uplink_rates

LOCAL, EDGE, CLOUD = 0, 1, 2
PLACES = ("local", "edge", "cloud")
"""The three places a task can run, by action number."""
_TASK_FIELDS = ("owner", "dest", "edge", "arrival", "bits", "cycles", "deadline", "ready",
                "finish", "energy")  # fmt: skip


@dataclass
class OffloadTotals:
    """Running sums of one episode, the inputs of the offloading measures."""

    tasks: int = 0
    """Tasks completed."""
    time_s: float = 0.0
    """Sum of their completion times (from arising to finishing)."""
    time_sq_s2: float = 0.0
    """Sum of the squared completion times (for confidence intervals)."""
    misses: int = 0
    """Tasks that completed after their deadline."""
    energy_j: float = 0.0
    """On-board energy spent on them."""
    placed: np.ndarray = field(default_factory=lambda: np.zeros(3, np.int64))
    """Tasks placed locally, on an edge server and in the cloud."""


class TaskTable:
    """The tasks in flight, one numpy array per field (``_TASK_FIELDS``)."""

    def __init__(self) -> None:
        self.columns: dict[str, np.ndarray] = {}
        self.clear()

    def clear(self) -> None:
        """No task in flight."""
        ints = ("owner", "dest", "edge")
        self.columns = {
            name: np.zeros(0, np.int64 if name in ints else np.float64) for name in _TASK_FIELDS
        }

    def __len__(self) -> int:
        return len(self.columns["owner"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def append(self, **values: np.ndarray) -> None:
        """Add tasks (every field given, each an array of the same length)."""
        for name, column in self.columns.items():
            self.columns[name] = np.concatenate([column, values[name]]).astype(column.dtype)

    def keep(self, mask: np.ndarray) -> None:
        """Keep the tasks where ``mask`` is True."""
        for name, column in self.columns.items():
            self.columns[name] = column[mask]


def _running_max(values: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Running maximum of ``values`` restarted at each new ``run`` (non-decreasing ids)."""
    span = float(values.max() - values.min()) + 1.0
    shifted = values + run * span
    out: np.ndarray = np.maximum.accumulate(shifted) - run * span
    return out


class OffloadSimulator:
    """Vectorised state of every vehicle, radio, edge server and task in flight."""

    def __init__(self, config: OffloadConfig) -> None:
        self.config = config
        m, k = config.vehicles, config.edge_servers
        self.edges = edge_positions(config)
        self.arrival_prob = np.asarray(config.rates()) * config.step_s
        self.type_probs = np.asarray(config.type_probabilities())
        self._type_cdf = np.cumsum(self.type_probs)
        self.type_bits = np.array([t.input_bits for t in config.task_types])
        self.type_cycles = np.array([t.cycles for t in config.task_types])
        self.type_deadline = np.array([t.deadline_s for t in config.task_types])
        self.rng = np.random.default_rng()
        self.now = 0.0
        self.steps = 0
        self.positions = np.zeros((m, 2))
        self.velocity = np.zeros((m, 2))
        self.rates = np.zeros((m, k))
        self.serving = np.zeros(m, np.int64)
        self.local_free = np.zeros(m)
        self.radio_free = np.zeros(m)
        self.edge_free = np.zeros(k)
        self.reported_backlog = np.zeros(k)
        self.report_time = 0.0
        self.has_task = np.zeros(m, bool)
        self.task_type = np.zeros(m, np.int64)
        self.bits = np.zeros(m)
        self.cycles = np.zeros(m)
        self.deadline = np.zeros(m)
        self.tasks = TaskTable()
        self.totals = OffloadTotals()

    # -- episode ---------------------------------------------------------------------

    def reset(self, rng: np.random.Generator) -> None:
        """Fresh positions, empty queues, the first tasks; ``rng`` drives the episode."""
        self.rng = rng
        self.now, self.steps = 0.0, 0
        self.positions, self.velocity = random_motion(self.config, rng)
        self._measure_links()
        for array in (self.local_free, self.radio_free, self.edge_free, self.reported_backlog):
            array.fill(0.0)
        self.report_time = 0.0
        self.tasks.clear()
        self.totals = OffloadTotals()
        self._draw_tasks()

    @property
    def done(self) -> bool:
        """True once the episode's steps are used up."""
        return self.steps >= self.config.episode_steps

    def step(self, actions: np.ndarray) -> np.ndarray:
        """Place the new tasks (``actions[v]`` for vehicle v: LOCAL, EDGE or CLOUD, unchecked;
        ignored without a task), advance one step; return each vehicle's cost of the tasks
        that completed in it."""
        self._place(np.asarray(actions, dtype=np.int64))
        self.steps += 1
        self.now = self.steps * self.config.step_s
        until = np.inf if self.done else self.now
        self._commit_edges(until)
        cost = self._complete(until)
        if self.config.speed_mps > 0:
            move(self.positions, self.velocity, self.config.step_s, self.config.area_m)
            self._measure_links()
        self._report()
        if self.done:
            self.has_task.fill(False)
        else:
            self._draw_tasks()
        return cost

    def force_tasks(self, vehicles: np.ndarray) -> None:
        """Give exactly ``vehicles`` a new task now, the others none (static instances)."""
        self._draw_tasks(np.isin(np.arange(self.config.vehicles), vehicles))

    # -- what a vehicle can know -----------------------------------------------------

    def backlog(self) -> np.ndarray:
        """``[K]`` seconds of work queued at each edge server now (what it would report)."""
        out: np.ndarray = np.maximum(self.edge_free - self.now, 0.0)
        return out

    def serving_rate(self) -> np.ndarray:
        """``[M]`` uplink rate of each vehicle to its serving edge server."""
        out: np.ndarray = self.rates[np.arange(self.config.vehicles), self.serving]
        return out

    def predicted_times(self) -> np.ndarray:
        """``[M, 3]`` completion time each vehicle predicts for its new task at each place,
        from what it knows: its own CPU and radio queues, its link rate and the last
        backlog report of its serving edge server (stale by up to ``report_period_s``;
        it does not know what the other vehicles are placing)."""
        cfg = self.config
        local_wait = np.maximum(self.local_free - self.now, 0.0)
        radio_wait = np.maximum(self.radio_free - self.now, 0.0)
        upload = radio_wait + self.bits / self.serving_rate()
        age = self.now - self.report_time
        edge_wait = np.maximum(self.reported_backlog[self.serving] - age - upload, 0.0)
        out = np.empty((cfg.vehicles, 3))
        out[:, LOCAL] = local_wait + self.cycles / cfg.local_cpu_hz
        out[:, EDGE] = upload + edge_wait + self.cycles / cfg.edge_cpu_hz
        out[:, CLOUD] = upload + self.cloud_delay(self.bits, self.cycles)
        return out

    def cloud_delay(self, bits: np.ndarray, cycles: np.ndarray) -> np.ndarray:
        """Seconds from the end of a task's upload to its end in the cloud."""
        cfg = self.config
        out: np.ndarray = (
            cfg.backhaul_latency_s + bits / cfg.backhaul_rate_bps + cycles / cfg.cloud_cpu_hz
        )
        return out

    # -- the step's parts --------------------------------------------------------------

    def _place(self, actions: np.ndarray) -> None:
        cfg = self.config
        v = np.flatnonzero(self.has_task)
        dest = actions[v]
        self.totals.placed += np.bincount(dest, minlength=3)
        bits, cycles = self.bits[v], self.cycles[v]
        finish = np.full(len(v), np.nan)
        ready = np.full(len(v), self.now)
        energy = np.zeros(len(v))
        local = dest == LOCAL
        lv = v[local]
        start = np.maximum(self.now, self.local_free[lv])
        finish[local] = start + cycles[local] / cfg.local_cpu_hz
        self.local_free[lv] = finish[local]
        energy[local] = cfg.cpu_energy_coefficient * cfg.local_cpu_hz**2 * cycles[local]
        away = ~local
        ov = v[away]
        upload = bits[away] / self.serving_rate()[ov]
        ready[away] = np.maximum(self.now, self.radio_free[ov]) + upload
        self.radio_free[ov] = ready[away]
        energy[away] = cfg.tx_power_w * upload
        cloud = dest == CLOUD
        finish[cloud] = ready[cloud] + self.cloud_delay(bits[cloud], cycles[cloud])
        self.tasks.append(
            owner=v, dest=dest, edge=self.serving[v], arrival=np.full(len(v), self.now),
            bits=bits, cycles=cycles, deadline=self.deadline[v], ready=ready, finish=finish,
            energy=energy,
        )  # fmt: skip

    def _commit_edges(self, until: float) -> None:
        """Queue every edge task whose upload ended by ``until``, in upload order."""
        t = self.tasks
        idx = np.flatnonzero((t["dest"] == EDGE) & np.isnan(t["finish"]) & (t["ready"] <= until))
        if not len(idx):
            return
        idx = idx[np.lexsort((t["owner"][idx], t["ready"][idx], t["edge"][idx]))]
        edge, ready = t["edge"][idx], t["ready"][idx]
        service = t["cycles"][idx] / self.config.edge_cpu_hz
        # FIFO per server: finish_n = max(ready_n, finish_{n-1}) + s_n, which unrolls to
        # finish_n = S_n + max(free, max_{k<=n} (ready_k - S_{k-1})) with S the running
        # sum of the services. Every server's tasks form one run of the sorted arrays.
        new_run = np.concatenate([[True], edge[1:] != edge[:-1]])
        first = np.flatnonzero(new_run)
        last = np.append(first[1:] - 1, len(idx) - 1)
        run = np.cumsum(new_run) - 1
        total = np.cumsum(service)
        total -= (total - service)[first][run]
        start = np.maximum(ready - (total - service), self.edge_free[edge])
        finish = total + _running_max(start, run)
        t["finish"][idx] = finish
        self.edge_free[edge[last]] = finish[last]

    def _complete(self, until: float) -> np.ndarray:
        cfg, t, totals = self.config, self.tasks, self.totals
        done = t["finish"] <= until
        owner = t["owner"][done]
        elapsed = t["finish"][done] - t["arrival"][done]
        missed = elapsed > t["deadline"][done]
        energy = t["energy"][done]
        cost = elapsed + cfg.miss_penalty_s * missed + cfg.energy_weight * energy
        totals.tasks += len(owner)
        totals.time_s += float(elapsed.sum())
        totals.time_sq_s2 += float((elapsed**2).sum())
        totals.misses += int(missed.sum())
        totals.energy_j += float(energy.sum())
        t.keep(~done)
        out: np.ndarray = np.bincount(owner, weights=cost, minlength=cfg.vehicles)
        return out

    def _measure_links(self) -> None:
        self.rates = uplink_rates(self.config, self.positions, self.edges)
        self.serving = np.argmax(self.rates, axis=1)

    def _report(self) -> None:
        if self.now - self.report_time >= self.config.report_period_s - 1e-9:
            self.reported_backlog = self.backlog()
            self.report_time = self.now

    def _draw_tasks(self, forced: np.ndarray | None = None) -> None:
        draw = self.rng.random((4, self.config.vehicles))
        self.has_task = draw[0] < self.arrival_prob if forced is None else forced
        self.task_type = np.minimum(
            np.searchsorted(self._type_cdf, draw[1], side="right"), len(self._type_cdf) - 1
        )
        size = 1.0 + self.config.size_spread * (2.0 * draw[2:] - 1.0)
        self.bits = np.where(self.has_task, self.type_bits[self.task_type] * size[0], 0.0)
        self.cycles = np.where(self.has_task, self.type_cycles[self.task_type] * size[1], 0.0)
        self.deadline = np.where(self.has_task, self.type_deadline[self.task_type], 0.0)
