"""Compare bandit agents by cumulative regret, averaged over independent runs.

curves = compare_bandits(["ucb1", "epsilon-greedy"], testbed_factory, steps=1000, runs=20)
plot_regret(curves, Path("regret.png"))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from fleetmind.algos.bandits.policies import BanditConfig, make_bandit


class RewardSource(Protocol):
    """Anything that pays a reward per pull and can tell the regret of that pull."""

    num_arms: int

    def pull(self, arm: int) -> float:
        """Reward of pulling ``arm`` now."""
        ...

    def regret(self, arm: int) -> float:
        """Regret of the pull just made."""
        ...


def compare_bandits(
    algos: Sequence[str],
    make_source: Callable[[int], RewardSource],
    steps: int,
    runs: int,
    base: BanditConfig | None = None,
) -> dict[str, np.ndarray]:
    """Mean cumulative regret ``[steps]`` of each algorithm; run ``r`` uses ``make_source(r)``."""
    base = base or BanditConfig()
    curves: dict[str, np.ndarray] = {}
    for algo in algos:
        total = np.zeros(steps)
        for run in range(runs):
            source = make_source(run)
            agent = make_bandit(
                replace(base, algo=algo, num_arms=source.num_arms, seed=base.seed + run)  # type: ignore[arg-type]
            )
            regret = np.zeros(steps)
            for t in range(steps):
                arm = agent.choose()
                agent.update(arm, source.pull(arm))
                regret[t] = source.regret(arm)
            total += np.cumsum(regret)
        curves[algo] = total / runs
    return curves


def plot_regret(curves: dict[str, np.ndarray], path: Path, title: str = "bandits") -> None:
    """Write a PNG of the cumulative-regret curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for algo, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, label=algo)
    ax.set_xlabel("step")
    ax.set_ylabel("cumulative regret (mean over runs)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
