"""Updates that diverge are rolled back, not published.

One bad batch (finite but enormous rewards, say) can make an update's loss, and then
the weights, NaN or infinite. The guard keeps the learner's state from before each
update; when the update's losses or the published network's weights are not finite
it restores that state, so the next version is the last good one again::

    guard = UpdateGuard(learner, module)
    metrics = guard.update(trajectories)   # None: rolled back (guard.reason says why)
    metrics = guard.update(own, trusted=True)  # this process's own data: no copy, no rollback
    guard.in_row                           # consecutive rollbacks (the run stops at a limit)

The version still moves on (the restored weights are published as the next
version), so actors waiting for an answer to their chunk get one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import DivergedError
from fleetmind.core.learning import TeamLearner


class UpdateGuard:
    """Runs a learner's updates; rolls back one whose losses or weights are not finite."""

    def __init__(self, learner: TeamLearner, module: Any) -> None:
        self.learner = learner
        self.module = module
        """The network actors receive (None: they share the learner's, in this process)."""
        self.rolled_back = 0
        """Updates rolled back so far."""
        self.in_row = 0
        """Updates rolled back since the last good one."""
        self.reason = ""
        """Why the latest update was rolled back."""

    def update(
        self, trajectories: Sequence[Trajectory], trusted: bool = False
    ) -> dict[str, float] | None:
        """One update; None when it diverged and the learner's state was restored.

        ``trusted``: the data is the run's own (its actor runs in this process), so
        there is nothing to roll back for: no copy is taken, and an update that
        diverges raises DivergedError at once (lower the learning rate).
        """
        learner = self.learner
        if trusted:
            version = learner.version
            metrics = learner.update(list(trajectories))
            reason = self._not_finite(metrics)
            if reason is not None:
                raise DivergedError(
                    f"training diverged: {reason} at update {version}; lower the learning "
                    "rate or check the rewards"
                )
            return metrics
        before = snapshot_state(learner.state_dict())
        version = learner.version
        metrics = learner.update(list(trajectories))
        reason = self._not_finite(metrics)
        if reason is None:
            self.in_row = 0
            return metrics
        learner.load_state_dict(before)
        learner.version = version + 1
        self.rolled_back += 1
        self.in_row += 1
        self.reason = f"{reason} at update {version}"
        return None

    def diverges(self, trajectories: Sequence[Trajectory]) -> bool:
        """Whether an update on ``trajectories`` alone diverges (a probe: the learner's
        state is restored either way)."""
        learner = self.learner
        before = snapshot_state(learner.state_dict())
        try:
            return self._not_finite(learner.update(list(trajectories))) is not None
        finally:
            learner.load_state_dict(before)

    def _not_finite(self, metrics: dict[str, float]) -> str | None:
        for key, value in metrics.items():
            if "loss" in key and not math.isfinite(value):
                return f"{key} is {value}"
        if isinstance(self.module, torch.nn.Module):
            for name, tensor in self.module.state_dict().items():
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    return f"weight {name} is not finite"
        return None


def snapshot_state(state: Any) -> Any:
    """A copy of a learner's ``state_dict`` that later updates cannot change.

    Tensors and arrays are cloned and containers rebuilt; immutable scalars are shared
    and anything else is taken as ``copy.deepcopy`` takes it. A fraction of
    deepcopy's cost on a state of many small entries, which is paid before every update.
    """
    if isinstance(state, dict):
        return {k: snapshot_state(v) for k, v in state.items()}
    if type(state) in (list, tuple):
        return type(state)(snapshot_state(v) for v in state)
    if isinstance(state, int | float | str | bool | None):
        return state
    return _clone(state)


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    return copy.deepcopy(value)
