"""What makes two runs the same run: the settings that define it.

A learner started on a run directory that already holds a run (a pod restarted by
Kubernetes runs the same command again) resumes it only when the run there is the
one it was asked to start::

    same = run_identity(saved_config) == run_identity(new_config)   # roughly
    check_same_run(saved_config, new_config, path)   # RunDirError naming both runs

The identity is config.json less what may change when a run resumes
(:data:`RESUMABLE_OVERRIDES`) and the run directory itself: the environment, the
algorithm and all of its settings, the seed, the normalisation, the mode of the
actors. A setting that only one side records (one added in a newer version) is not
compared.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fleetmind.core.errors import RunDirError

RESUMABLE_OVERRIDES = ("steps", "target_return", "checkpoint_interval_s", "log_interval_s")
"""Train settings that may change when a run resumes."""
NOT_DEFINING = (*RESUMABLE_OVERRIDES, "run_dir")
"""Top-level settings of config.json that do not tell one run from another."""
SHOWN_DIFFERENCES = 3
"""Differing settings an error names (then a count of the rest)."""


def run_identity(config: dict[str, Any]) -> dict[str, Any]:
    """The defining settings of config.json-shaped ``config``, as flat dotted keys
    (``env_id``, ``ppo.lr``, ``distributed.mode``) with JSON values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in NOT_DEFINING or key.startswith("_"):
            continue
        if key == "distributed" and isinstance(value, dict):
            if "mode" in value:  # the rest says how actors are served, not what is learned
                out["distributed.mode"] = value["mode"]
        elif isinstance(value, dict):  # the algorithm's section
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    canonical: dict[str, Any] = json.loads(json.dumps(out, sort_keys=True, default=str))
    return canonical


def run_id(config: dict[str, Any]) -> str:
    """A short fingerprint of the run's identity (12 hex digits)."""
    text = json.dumps(run_identity(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def differences(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``KEY (A there, B here)`` for each defining setting both record and that differs."""
    there, here = run_identity(saved), run_identity(new)
    return [
        f"{key} ({there[key]!r} there, {here[key]!r} here)"
        for key in sorted(there.keys() & here.keys())
        if there[key] != here[key]
    ]


def describe(config: dict[str, Any]) -> str:
    """``ENV ALGO seed S, id ID``: a run, as errors and log lines name it."""
    return (
        f"{config.get('env_id', '?')} {config.get('algo', '?')} seed {config.get('seed', '?')}, "
        f"id {run_id(config)}"
    )


def check_same_run(saved: dict[str, Any], new: dict[str, Any], path: Path) -> None:
    """RunDirError when the run recorded in ``path`` (``saved``) is not ``new``."""
    diff = differences(saved, new)
    if not diff:
        return
    shown = ", ".join(diff[:SHOWN_DIFFERENCES])
    more = f" and {len(diff) - SHOWN_DIFFERENCES} more" if len(diff) > SHOWN_DIFFERENCES else ""
    raise RunDirError(
        f"run directory {path} holds another run ({describe(saved)}) than this one "
        f"({describe(new)}): {shown}{more} differ; pass another --run-dir, or --force to "
        "delete that run and start over"
    )
