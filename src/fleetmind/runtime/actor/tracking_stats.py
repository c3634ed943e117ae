"""Observation statistics an actor keeps, with what it has not yet sent."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetmind.core.normalizer import RunningMeanStd

UNSENT_BATCHES = 1024
"""Batches an actor keeps raw for its delta before folding them (memory bound)."""


@dataclass
class TrackingStats(RunningMeanStd):
    """Running statistics that also keep ``delta``: what this actor saw since its last push.

    The local view is the statistics last adopted from the learner merged with the
    delta; it folds every batch in at once (the next observation is normalised with
    it). The delta keeps the raw batches and computes their statistics when they are
    sent, so a step pays for one fold, not two. Once a delta is taken, the view is the
    adopted statistics again: a chunk is normalised with its version's statistics and
    its own rows only, whatever this actor sent earlier under the same version (that
    is what the learner can rebuild; the rows come back merged with a later version).
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unsent: list[np.ndarray] = []
        self._folded = RunningMeanStd(self.shape)
        self._adopted = self.copy()

    def update(self, data: np.ndarray) -> None:
        """Fold a batch into the local view; keep it for the delta."""
        if data.shape[0] == 0:
            return
        rows = np.array(data, dtype=np.float64)  # converted once, for the fold and the delta
        super().update(rows)
        self._unsent.append(rows)
        if len(self._unsent) >= UNSENT_BATCHES:  # a long outage: bound the memory
            self._folded.update(np.concatenate(self._unsent))
            self._unsent = []

    @property
    def delta(self) -> RunningMeanStd:
        """Statistics of the batches not yet sent."""
        delta = self._folded.copy()
        if self._unsent:
            delta.update(np.concatenate(self._unsent))
        return delta

    def take_delta(self) -> RunningMeanStd:
        """The delta so far; starts a new one (the view is the adopted statistics again)."""
        delta = self.delta
        self._unsent = []
        self._folded = RunningMeanStd(self.shape)
        self._set_view(self._adopted)
        return delta

    def adopt(self, merged: RunningMeanStd) -> None:
        """Use the learner's merged statistics plus what is not yet sent."""
        self._adopted = merged.copy()
        view = merged.copy()
        view.merge(self.delta)
        self._set_view(view)

    def _set_view(self, view: RunningMeanStd) -> None:
        self.mean, self.var, self.count = view.mean.copy(), view.var.copy(), view.count
