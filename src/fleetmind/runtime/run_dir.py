"""The run directory: config, metrics, TensorBoard events, plots, checkpoints.

::

    DIR/config.json          the full resolved config
    DIR/metrics.jsonl        one JSON object per report
    DIR/events.out.tfevents.*  TensorBoard
    DIR/curve.png            mean episode return against env steps
    DIR/summary.json         outcome of the run (solved, steps, wall time)
    DIR/checkpoints/         see fleetmind.algos.checkpoint
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any, TextIO

from fleetmind.algos.checkpoint import CheckpointStore
from fleetmind.core.errors import RunDirError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CURVE = "curve.png"
_JSON_TEMP = re.compile(r"^\..+\.jsonl?\.tmp$")
"""Temporary names :meth:`RunDir.write_json` and :meth:`RunDir.drop_metrics_after` give
(``.NAME.tmp``)."""


class RunDir:
    """A run directory that exists and is ready to be written."""

    def __init__(self, path: Path, keep_checkpoints: int = 3) -> None:
        self.path = Path(path)
        self.checkpoints = CheckpointStore(self.path / "checkpoints", keep=keep_checkpoints)

    @classmethod
    def create(cls, path: Path, force: bool, keep_checkpoints: int = 3) -> RunDir:
        """A fresh run directory; refuses a non-empty one unless ``force``."""
        path = Path(path)
        try:
            if path.exists() and not path.is_dir():
                raise RunDirError(f"run directory {path} exists and is not a directory")
            if path.is_dir() and any(path.iterdir()):
                if not force:
                    raise RunDirError(
                        f"run directory {path} is not empty; pass --resume {path} to continue "
                        "that run or --force to delete it and start over"
                    )
                shutil.rmtree(path)
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
            raise RunDirError(
                f"cannot create run directory {path}: {exc.strerror}{where}; "
                "pass a --run-dir in a folder you can write to"
            ) from None
        return cls(path, keep_checkpoints)

    @classmethod
    def open_existing(cls, path: Path, keep_checkpoints: int = 3) -> RunDir:
        """An existing run directory to resume; RunDirError if it has no config."""
        path = Path(path)
        if not (path / CONFIG).is_file():
            raise RunDirError(f"cannot resume {path}: {path / CONFIG} does not exist")
        return cls(path, keep_checkpoints)

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete what killed writes left (``.NAME.json.tmp``, checkpoint temporaries).

        The run's writer calls this when it starts or resumes, before it writes.
        """
        stale = [p for p in self.path.glob(".*.tmp") if _JSON_TEMP.match(p.name)]
        for path in stale:
            path.unlink(missing_ok=True)
        return stale + self.checkpoints.remove_stale_temp_files()

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        """Write ``name`` atomically as indented JSON."""
        tmp = self.path / f".{name}.tmp"
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path / name)

    def drop_metrics_after(self, env_steps: int) -> int:
        """Rewrite metrics.jsonl (atomically) without the reports past ``env_steps``, and
        without a line a killed writer tore; return how many lines went.

        A run resumed from a checkpoint at ``env_steps`` calls this before it reports,
        so the steps of metrics.jsonl never go backwards.
        """
        path = self.path / METRICS
        if not path.is_file():
            return 0
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        kept = [line for line in lines if _report_within(line, env_steps)]
        if len(kept) == len(lines) and (not text or text.endswith("\n")):
            return 0
        tmp = self.path / f".{METRICS}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in kept))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return len(lines) - len(kept)

    def read_config(self) -> dict[str, Any]:
        """The parsed config.json."""
        try:
            data = json.loads((self.path / CONFIG).read_text())
        except (OSError, ValueError) as exc:
            raise RunDirError(f"{self.path / CONFIG} cannot be read: {exc}") from exc
        if not isinstance(data, dict):
            raise RunDirError(f"{self.path / CONFIG} does not hold a JSON object")
        return data


def _report_within(line: str, env_steps: int) -> bool:
    """A whole report at or before ``env_steps`` (one without a step count is kept)."""
    try:
        record = json.loads(line)
    except ValueError:
        return False
    if not isinstance(record, dict):
        return False
    steps = record.get("env_steps")
    return not isinstance(steps, int | float) or steps <= env_steps


class MetricsLog:
    """Appends reports to metrics.jsonl and TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / METRICS
        self._fh: TextIO = self.path.open("a", encoding="utf-8")
        self._tb: Any = None
        if tensorboard:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(run_dir))

    def write(self, record: dict[str, Any]) -> None:
        """Append one report; numbers also go to TensorBoard at ``env_steps``."""
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in record.items()
        }
        self._fh.write(json.dumps(clean) + "\n")
        self._fh.flush()
        if self._tb is not None:
            step = int(record.get("env_steps", 0))
            for key, value in clean.items():
                if (
                    key != "env_steps"
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                ):
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        """Flush and close both sinks."""
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All records of metrics.jsonl (a torn last line is skipped)."""
    path = Path(run_dir) / METRICS
    records = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def plot_curve(run_dir: Path, title: str) -> Path:
    """Draw curve.png: mean episode return against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [
        (r["env_steps"], r["episode_return_mean"])
        for r in read_metrics(run_dir)
        if r.get("episode_return_mean") is not None
    ]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    if points:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, color="tab:blue")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean return (last 100 episodes)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(run_dir) / CURVE
    fig.savefig(out)
    plt.close(fig)
    return out
