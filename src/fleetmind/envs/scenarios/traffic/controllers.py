"""Hand-written signal controllers, the baselines learnt controllers are compared with.

They read the network through :class:`SignalView`, which both back ends
implement, so the same controller drives the built-in simulator and SUMO:

* ``fixed-time``: every phase in turn, green for its configured seconds (the
  built-in simulator's ``fixed_green_s``; SUMO: the durations in the network file);
* ``max-pressure``: the phase whose lanes have the largest queue minus
  downstream load (Varaiya's max-pressure);
* ``longest-queue``: the phase serving the most queued vehicles.

Minimum green and yellow times are enforced by the environment itself.
"""

from __future__ import annotations

import difflib
from typing import Protocol

import numpy as np

from fleetmind.core.errors import UnknownNameError


class SignalView(Protocol):
    """What a controller may read of a traffic env."""

    agents: list[str]

    def current_phases(self) -> dict[str, int]:
        """Green phase index of every live signal."""
        ...

    def times_in_phase(self) -> dict[str, float]:
        """Seconds since each signal last changed phase."""
        ...

    def phase_queues(self) -> dict[str, np.ndarray]:
        """Queued vehicles on the lanes each phase serves, per signal."""
        ...

    def phase_pressures(self) -> dict[str, np.ndarray]:
        """Max-pressure weight of each phase, per signal."""
        ...

    def fixed_green_times(self) -> dict[str, list[float]]:
        """Green seconds of each phase for a fixed-time plan, per signal."""
        ...


class Controller(Protocol):
    """A signal controller: picks every live signal's next phase."""

    def reset(self, view: SignalView) -> None:
        """Forget the previous episode."""
        ...

    def act(self, view: SignalView) -> dict[str, int]:
        """The requested phase of every live signal."""
        ...


class FixedTime:
    """Cycle through the phases with fixed green times."""

    def __init__(self) -> None:
        self._greens: dict[str, list[float]] = {}

    def reset(self, view: SignalView) -> None:
        """Read the plan of every signal."""
        self._greens = view.fixed_green_times()

    def act(self, view: SignalView) -> dict[str, int]:
        """Keep the phase until its green time is used up, then the next one."""
        phases = view.current_phases()
        elapsed = view.times_in_phase()
        out: dict[str, int] = {}
        for agent in view.agents:
            greens = self._greens[agent]
            phase = phases[agent]
            out[agent] = (phase + 1) % len(greens) if elapsed[agent] >= greens[phase] else phase
        return out


def _argmax_keep(values: np.ndarray, current: int) -> int:
    """Index of the largest value; the current phase wins ties."""
    best = int(np.argmax(values))
    return current if values[current] >= values[best] else best


class MaxPressure:
    """Serve the phase with the largest pressure."""

    def reset(self, view: SignalView) -> None:
        """Stateless."""

    def act(self, view: SignalView) -> dict[str, int]:
        """Argmax of the phase pressures."""
        phases = view.current_phases()
        return {a: _argmax_keep(p, phases[a]) for a, p in view.phase_pressures().items()}


class LongestQueue:
    """Serve the phase with the most queued vehicles."""

    def reset(self, view: SignalView) -> None:
        """Stateless."""

    def act(self, view: SignalView) -> dict[str, int]:
        """Argmax of the phase queues."""
        phases = view.current_phases()
        return {a: _argmax_keep(q, phases[a]) for a, q in view.phase_queues().items()}


CONTROLLERS: dict[str, type[FixedTime] | type[MaxPressure] | type[LongestQueue]] = {
    "fixed-time": FixedTime,
    "max-pressure": MaxPressure,
    "longest-queue": LongestQueue,
}


def make_controller(name: str) -> Controller:
    """A fresh controller by name; UnknownNameError with close matches otherwise."""
    cls = CONTROLLERS.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, list(CONTROLLERS), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            f"unknown baseline policy {name!r}; choose one of {', '.join(CONTROLLERS)}.{hint}"
        )
    return cls()
