"""Returns and lengths of finished episodes: what decides "solved" and what reports show."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class EpisodeStats:
    """Returns and lengths of finished episodes."""

    window: int = 100
    """Episodes kept for the running means."""
    episodes: int = 0
    """Episodes finished so far."""
    returns: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    """Returns of the latest ``window`` episodes."""
    lengths: deque[int] = field(default_factory=lambda: deque(maxlen=100))
    """Lengths of the latest ``window`` episodes."""

    def add(self, episode_return: float, length: int) -> None:
        """Record one finished episode."""
        self.episodes += 1
        self.returns.append(episode_return)
        self.lengths.append(length)

    def mean_return(self) -> float:
        """Mean return of the window, nan before the first episode."""
        return float(np.mean(self.returns)) if self.returns else float("nan")

    def full_window_mean(self) -> float | None:
        """Mean return once the window holds ``window`` episodes, else None."""
        return float(np.mean(self.returns)) if len(self.returns) >= self.window else None


class AgentReturns:
    """Each agent's own return of the latest finished episodes (a team's breakdown)."""

    def __init__(self, agents: Sequence[str], window: int = 100) -> None:
        self.agents = tuple(agents)
        """Agent names in order."""
        self.windows: list[deque[float]] = [deque(maxlen=window) for _ in self.agents]
        """Per agent: its returns of the latest ``window`` episodes."""

    def add(self, returns: Sequence[float]) -> None:
        """Record one finished episode: every agent's return, in agent order."""
        for window, value in zip(self.windows, returns, strict=True):
            window.append(value)

    def means(self) -> dict[str, float | None]:
        """Mean return of the window per agent name (None before its first episode)."""
        return {
            agent: float(np.mean(w)) if w else None
            for agent, w in zip(self.agents, self.windows, strict=True)
        }
