"""Reward sources for bandits: the k-armed testbed and user-supplied reward tables.

A source answers ``pull(arm) -> reward`` one step at a time and knows, for
regret, what the best choice would have earned:

- :class:`KArmedTestbed` (Sutton & Barto, ch. 2): arm means drawn once per run,
  ``N(0, 1)`` for Gaussian arms (rewards ``N(mean, 1)``) or ``U(0, 1)`` for
  Bernoulli arms. Regret is the pseudo-regret ``sum_t mu* - mu(a_t)``.
- :class:`RewardTable`: a ``[T, K]`` table of the reward each arm would have paid
  at each step (a CSV file with one row per step, one column per arm, or a numpy
  array). Regret is measured against the best single arm in hindsight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from fleetmind.core.errors import InvalidInputError, NotFoundError

TestbedKind = Literal["gaussian", "bernoulli"]


class KArmedTestbed:
    """``num_arms`` stationary arms with hidden means."""

    def __init__(self, num_arms: int, kind: TestbedKind = "gaussian", seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.kind = kind
        self.num_arms = num_arms
        if kind == "gaussian":
            self.means = self.rng.standard_normal(num_arms)
        else:
            self.means = self.rng.random(num_arms)
        self.steps = 0

    def pull(self, arm: int) -> float:
        """Reward of one pull of ``arm``."""
        self.steps += 1
        if self.kind == "gaussian":
            return float(self.rng.normal(self.means[arm], 1.0))
        return float(self.rng.random() < self.means[arm])

    def regret(self, arm: int) -> float:
        """Expected loss of pulling ``arm`` instead of the best arm."""
        return float(self.means.max() - self.means[arm])


class RewardTable:
    """Replays a ``[T, K]`` table of rewards, one row per step."""

    def __init__(self, rewards: np.ndarray) -> None:
        table = np.asarray(rewards, dtype=np.float64)
        if table.ndim != 2 or table.shape[0] < 1 or table.shape[1] < 1:
            raise InvalidInputError(
                f"a reward table must be [steps, arms] with at least one of each, "
                f"got shape {list(table.shape)}"
            )
        bad = np.argwhere(~np.isfinite(table))
        if len(bad):
            row, col = bad[0]
            raise InvalidInputError(f"reward table has a non-finite value at step {row}, arm {col}")
        self.table = table
        self.num_arms = table.shape[1]
        self.best = int(table.sum(axis=0).argmax())
        self.steps = 0

    @classmethod
    def from_csv(cls, path: Path) -> RewardTable:
        """Read a CSV of numbers (one row per step, one column per arm; no header)."""
        if not Path(path).is_file():
            raise NotFoundError(f"reward file {str(path)!r} does not exist")
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"cannot read reward file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise InvalidInputError(f"reward file {path} is not UTF-8 text") from None
        rows = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append([float(v) for v in line.split(",")])
            except ValueError as exc:
                raise InvalidInputError(f"{path}:{line_no}: not a number: {exc}") from exc
            if len(rows[-1]) != len(rows[0]):
                raise InvalidInputError(
                    f"{path}:{line_no}: {len(rows[-1])} columns, the first row has {len(rows[0])}"
                )
        return cls(np.asarray(rows))

    def __len__(self) -> int:
        return int(self.table.shape[0])

    def pull(self, arm: int) -> float:
        """The reward ``arm`` paid at the current step (then move to the next step)."""
        if self.steps >= len(self):
            raise InvalidInputError(f"the reward table has only {len(self)} steps")
        reward = float(self.table[self.steps, arm])
        self.steps += 1
        return reward

    def regret(self, arm: int) -> float:
        """What the best arm in hindsight paid at the step just pulled, minus ``arm``'s."""
        row = self.table[self.steps - 1]
        return float(row[self.best] - row[arm])
