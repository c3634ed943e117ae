"""Progress display: a bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Any

from tqdm import tqdm

log = logging.getLogger("fleetmind.train")


class Progress:
    """Shows env steps, episodes, mean return, steps/s and ETA."""

    def __init__(self, total: int, initial: int, enabled: bool | None = None) -> None:
        self.total = total
        tty = sys.stderr.isatty() if enabled is None else enabled
        self._bar: tqdm[Any] | None = None
        if tty:
            self._bar = tqdm(
                total=total, initial=initial, unit="step", unit_scale=True, dynamic_ncols=True
            )

    def update(self, env_steps: int, record: dict[str, Any]) -> None:
        """Show the latest report."""
        mean = record.get("episode_return_mean")
        mean_text = "n/a" if mean is None else f"{mean:.1f}"
        if self._bar is not None:
            self._bar.n = min(env_steps, self.total)
            self._bar.set_postfix(
                episodes=record.get("episodes", 0),
                ret=mean_text,
                sps=f"{record.get('steps_per_s', 0):.0f}",
            )
            self._bar.refresh()
            return
        rate = float(record.get("steps_per_s") or 0.0)
        eta = (self.total - env_steps) / rate if rate > 0 else float("inf")
        log.info(
            "env_steps=%d/%d episodes=%d return_mean=%s steps_per_s=%.0f eta_s=%.0f",
            env_steps,
            self.total,
            record.get("episodes", 0),
            mean_text,
            rate,
            eta,
        )

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
