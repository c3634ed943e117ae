"""Which lanes each green phase of a SUMO traffic light serves, for the baselines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SignalLinks:
    """The incoming and outgoing lanes of each green phase of one traffic light."""

    tls_id: str
    """SUMO id of the traffic light."""
    phase_in_lanes: tuple[tuple[str, ...], ...]
    """Incoming lanes with a green light, per green phase."""
    phase_links: tuple[tuple[tuple[str, str], ...], ...]
    """(incoming, outgoing) lane pairs with a green light, per green phase."""

    @classmethod
    def read(cls, conn: Any, tls_id: str, green_states: Iterable[str]) -> SignalLinks:
        """Read the controlled links of ``tls_id`` from a running simulation."""
        links = conn.trafficlight.getControlledLinks(tls_id)
        ins: list[tuple[str, ...]] = []
        pairs: list[tuple[tuple[str, str], ...]] = []
        for state in green_states:
            green = [
                (str(link[0]), str(link[1]))
                for index, char in enumerate(state)
                if char in "Gg" and index < len(links)
                for link in links[index]
            ]
            pairs.append(tuple(dict.fromkeys(green)))
            ins.append(tuple(dict.fromkeys(p[0] for p in green)))
        return cls(tls_id=tls_id, phase_in_lanes=tuple(ins), phase_links=tuple(pairs))

    def lanes(self) -> set[str]:
        """Every lane this light's phases touch."""
        out = {lane for phase in self.phase_in_lanes for lane in phase}
        out.update(pair[1] for phase in self.phase_links for pair in phase)
        return out

    def phase_queues(self, halting: dict[str, int]) -> np.ndarray:
        """Halting vehicles on the incoming lanes of each green phase."""
        return np.array([sum(halting[x] for x in lanes) for lanes in self.phase_in_lanes], float)

    def phase_pressures(self, vehicles: dict[str, int]) -> np.ndarray:
        """Sum over green links of vehicles on the incoming minus the outgoing lane."""
        return np.array(
            [sum(vehicles[i] - vehicles[o] for i, o in links) for links in self.phase_links],
            float,
        )


def lane_counts(conn: Any, signals: Iterable[SignalLinks], halting: bool) -> dict[str, int]:
    """Halting (or all) vehicles on every lane the given signals touch."""
    lanes: set[str] = set()
    for signal in signals:
        lanes |= signal.lanes()
    read = conn.lane.getLastStepHaltingNumber if halting else conn.lane.getLastStepVehicleNumber
    return {lane: int(read(lane)) for lane in lanes}
