"""Finding the processes a federated run started, by a mark in their environment."""

from __future__ import annotations

import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
"""The source tree the child processes import."""


def processes_marked(mark: str) -> list[int]:
    """Processes whose environment carries ``mark`` (ray's and Flower's inherit it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def no_process_left(mark: str, wait_s: float = 30.0) -> bool:
    """True once no process carries ``mark`` (helpers leave soon after their parent)."""
    deadline = time.monotonic() + wait_s
    while processes_marked(mark):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True
