"""The road layout of a grid of intersections, as index arrays.

Each intersection has four approaches (vehicles arriving from the north, east,
south and west side, in that order) and three lanes per approach (left,
through, right), so twelve incoming lanes numbered ``approach * 3 + movement``.
A *slot* is one incoming road, ``intersection * 4 + approach``; the extra slot
``num_slots`` stands for "leaves the network".

Four phases, each a set of lanes that may discharge together::

    0  north-south through and right     2  east-west through and right
    1  north-south left                  3  east-west left

Grid coordinates are ``(row, col)`` with row 0 in the north; intersection
``row * cols + col``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_APPROACHES = 4
NUM_MOVEMENTS = 3
LANES = NUM_APPROACHES * NUM_MOVEMENTS
NUM_PHASES = 4
PHASE_NAMES = ("NS-through", "NS-left", "EW-through", "EW-left")

# Row and column change when leaving an intersection through each side (N, E, S, W).
_SIDE_STEP = ((-1, 0), (0, 1), (1, 0), (0, -1))


def green_masks() -> np.ndarray:
    """``[NUM_PHASES, LANES]`` booleans: which lanes are green in each phase."""
    masks = np.zeros((NUM_PHASES, NUM_APPROACHES, NUM_MOVEMENTS), dtype=bool)
    for approach in range(NUM_APPROACHES):
        axis_offset = 0 if approach in (0, 2) else 2
        masks[axis_offset, approach, 1:] = True  # through and right
        masks[axis_offset + 1, approach, 0] = True  # left
    return masks.reshape(NUM_PHASES, LANES)


@dataclass(frozen=True)
class GridNetwork:
    """Index arrays describing where every lane's vehicles go next."""

    rows: int
    """Intersections per column."""
    cols: int
    """Intersections per row."""
    lane_dest: np.ndarray
    """``[I * LANES]`` slot each lane discharges into (``num_slots`` = leaves)."""
    entry_slots: np.ndarray
    """Slots fed from outside the network (roads entering at the border)."""
    entry_sides: np.ndarray
    """Side (0 N, 1 E, 2 S, 3 W) each entry slot receives traffic from."""
    neighbours: np.ndarray
    """``[I, 4]`` neighbour intersection on each side, ``-1`` at the border."""
    green: np.ndarray
    """``[NUM_PHASES, LANES]`` green lanes of each phase."""

    @property
    def num_intersections(self) -> int:
        """Number of intersections."""
        return self.rows * self.cols

    @property
    def num_slots(self) -> int:
        """Number of incoming roads (four per intersection)."""
        return self.num_intersections * NUM_APPROACHES


def build_grid(rows: int, cols: int) -> GridNetwork:
    """The layout of a ``rows`` x ``cols`` grid (sizes already validated)."""
    count = rows * cols
    neighbours = np.full((count, NUM_APPROACHES), -1, dtype=np.int64)
    for node in range(count):
        row, col = divmod(node, cols)
        for side, (dr, dc) in enumerate(_SIDE_STEP):
            r, c = row + dr, col + dc
            if 0 <= r < rows and 0 <= c < cols:
                neighbours[node, side] = r * cols + c
    num_slots = count * NUM_APPROACHES
    lane_dest = np.full(count * LANES, num_slots, dtype=np.int64)
    for node in range(count):
        for approach in range(NUM_APPROACHES):
            for movement in range(NUM_MOVEMENTS):
                exit_side = (approach + movement + 1) % NUM_APPROACHES
                nxt = neighbours[node, exit_side]
                if nxt >= 0:
                    lane = node * LANES + approach * NUM_MOVEMENTS + movement
                    lane_dest[lane] = nxt * NUM_APPROACHES + (exit_side + 2) % NUM_APPROACHES
    border = np.argwhere(neighbours < 0)
    entry_slots = border[:, 0] * NUM_APPROACHES + border[:, 1]
    return GridNetwork(
        rows=rows,
        cols=cols,
        lane_dest=lane_dest,
        entry_slots=entry_slots.astype(np.int64),
        entry_sides=border[:, 1].astype(np.int64),
        neighbours=neighbours,
        green=green_masks(),
    )
