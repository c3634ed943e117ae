"""One method on one instance, its schedule checked: what ``fleetmind jobshop solve`` runs.

=================  ===========================================  ===========================
method             static instance                              ``breakdowns`` seed given
=================  ===========================================  ===========================
``spt`` ... rules  the rule's non-delay schedule                that schedule, right-shift
                                                                repaired past the repairs
``cpsat``          CP-SAT within ``time_limit_s``               clairvoyant CP-SAT: knows
                                                                the repairs in advance
``agent:RUN``      the dispatcher trained in the run            the dispatcher, online: it
                   directory RUN, greedy; with ``sample_s``,    meets each failure when it
                   the best schedule it samples in that time    happens
=================  ===========================================  ===========================

The clairvoyant CP-SAT starts from the best rule's repaired schedule and may not
end later than it; its ``bound`` is a lower bound no online method can beat.
Every schedule passes :func:`check_schedule` before it is returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel, breakdown_intervals
from fleetmind.envs.scenarios.jobshop.instance import JobShopInstance
from fleetmind.envs.scenarios.jobshop.rules import RULES, dispatch_rule, right_shift_repair
from fleetmind.envs.scenarios.jobshop.schedule import Schedule, check_schedule

if TYPE_CHECKING:
    from fleetmind.envs.scenarios.jobshop.cpsat import CpsatResult
    from fleetmind.envs.scenarios.jobshop.learned import LearnedDispatcher

METHODS = (*RULES, "cpsat", "agent:RUN")

Repairs = list[list[tuple[int, int]]]


@dataclass
class Solution:
    """A checked schedule and what is known about it."""

    instance: JobShopInstance
    method: str
    schedule: Schedule
    details: dict[str, Any]
    """Method-specific facts: CP-SAT's ``optimal`` and ``bound``, the breakdown seed."""

    def to_json(self) -> dict[str, Any]:
        optimum = self.instance.optimum
        return {
            "instance": self.instance.name,
            "jobs": self.instance.num_jobs,
            "machines": self.instance.num_machines,
            "method": self.method,
            "optimum": optimum,
            "lower_bound": self.instance.lower_bound(),
            "gap_to_optimum": None if not optimum else self.schedule.makespan / optimum - 1,
            **self.details,
            **self.schedule.to_json(),
        }


def repaired_rule(
    instance: JobShopInstance, rule: str, model: BreakdownModel, seed: int
) -> tuple[Schedule, Repairs]:
    """``rule``'s static schedule right-shift repaired past the seed's repairs, and
    those repairs (every one that starts before the repaired schedule ends)."""
    static = dispatch_rule(instance, rule)
    until = max(int(instance.durations.sum()), 1)
    while True:
        repairs = breakdown_intervals(model, seed, instance.num_machines, until)
        repaired = right_shift_repair(static, repairs)
        if repaired.makespan <= until:
            return repaired, repairs
        until *= 2


def _agent(
    instance: JobShopInstance,
    dispatcher: LearnedDispatcher,
    model: BreakdownModel | None,
    seed: int | None,
    sample_s: float,
) -> tuple[Schedule, dict[str, Any]]:
    from fleetmind.nn.threads import limit_threads

    if model is not None and seed is not None:
        if sample_s > 0:
            raise ConfigError(
                "sampling needs a static instance (a sampled schedule would know the failures); "
                "drop --sample-s or --breakdowns"
            )
        limit_threads(1)  # a policy this small only loses to BLAS's thread pool
        return dispatcher.greedy(instance, model, seed), {"decoding": "greedy"}
    limit_threads(1)
    if sample_s <= 0:
        return dispatcher.greedy(instance), {"decoding": "greedy"}
    sampled = dispatcher.sample(instance, sample_s)
    details = {
        "decoding": "sampled",
        "samples": sampled.samples,
        "sample_workers": sampled.workers,
        "greedy_makespan": sampled.greedy_makespan,
    }
    return sampled.schedule, details


def clairvoyant_cpsat(
    instance: JobShopInstance, model: BreakdownModel, seed: int, time_limit_s: float
) -> tuple[Schedule, CpsatResult]:
    """The best rule's repaired schedule under the breakdowns of ``seed``, and CP-SAT
    knowing those breakdowns, started from that schedule and never later than it."""
    from fleetmind.envs.scenarios.jobshop.cpsat import solve_cpsat

    best, repairs = min(
        (repaired_rule(instance, rule, model, seed) for rule in RULES),
        key=lambda pair: pair[0].makespan,
    )
    check_schedule(instance, best)
    result = solve_cpsat(
        instance, time_limit_s, repairs=repairs, hint=best, upper_bound=best.makespan
    )
    return best, result


def _cpsat(
    instance: JobShopInstance,
    model: BreakdownModel | None,
    seed: int | None,
    time_limit_s: float,
) -> tuple[Schedule, dict[str, Any]]:
    from fleetmind.envs.scenarios.jobshop.cpsat import solve_cpsat

    if model is None or seed is None:
        result = solve_cpsat(instance, time_limit_s)
    else:
        result = clairvoyant_cpsat(instance, model, seed, time_limit_s)[1]
    details = {"optimal": result.optimal, "bound": result.bound, "solver_s": result.wall_s}
    return result.schedule, details


def solve(
    instance: JobShopInstance,
    method: str,
    breakdown_seed: int | None = None,
    model: BreakdownModel | None = None,
    time_limit_s: float = 10.0,
    sample_s: float = 0.0,
    dispatcher: LearnedDispatcher | None = None,
) -> Solution:
    """Run ``method`` on ``instance`` (under the breakdowns of ``breakdown_seed`` when
    given, drawn from ``model`` or the instance's default model) and check the result.
    ``agent:RUN`` schedules with ``dispatcher`` (the caller loads it from RUN; this
    layer knows no checkpoints), greedy or sampling for ``sample_s`` seconds."""
    agent = method.startswith("agent:") or method == "agent"
    if not agent and method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not sample_s >= 0:
        raise ConfigError(f"--sample-s must be 0 or more seconds, got {sample_s}")
    if sample_s > 0 and not agent:
        raise ConfigError(f"--sample-s applies to agent:RUN, not to {method}")
    if breakdown_seed is not None and model is None:
        model = BreakdownModel.for_instance(instance)
    details: dict[str, Any] = {"breakdown_seed": breakdown_seed}
    if agent:
        if dispatcher is None:
            raise ConfigError(f"--method {method}: no dispatcher was loaded for it")
        schedule, extra = _agent(instance, dispatcher, model, breakdown_seed, sample_s)
        details.update(extra)
    elif method == "cpsat":
        schedule, extra = _cpsat(instance, model, breakdown_seed, time_limit_s)
        details.update(extra)
    elif model is not None and breakdown_seed is not None:
        schedule, _ = repaired_rule(instance, method, model, breakdown_seed)
    else:
        schedule = dispatch_rule(instance, method)
    check_schedule(instance, schedule)
    return Solution(instance, method, schedule, details)
