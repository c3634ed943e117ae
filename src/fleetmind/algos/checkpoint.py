"""The checkpoint format and its atomic, verified store.

A run directory keeps its checkpoints in ``checkpoints/``::

    checkpoints/
      ckpt-000000123456.pt     one file per save, named by env steps (12 digits)
      latest.json              {"file": ..., "sha256": ..., "env_steps": ..., "format": ...}

Each ``.pt`` file is a dict readable with ``torch.load(path, weights_only=True)``
(tensors, numbers, strings, lists and dicts only: nothing is unpickled beyond
that), with the keys:

==================  =========================================================
``format``          ``"fleetmind.checkpoint/1"``
``algo``            algorithm name (``"ppo"``, ...)
``config``          the resolved training config, as a JSON string
``spaces``          ``{"observation": ..., "action": ...}`` as a JSON string
``env_steps``       environment steps consumed so far
``version``         policy version (number of updates)
``learner``         the algorithm's state: model and optimizer state dicts, ...
``normalizer``      ``{"mean", "var", "count"}`` tensors, or absent
``rng``             RNG states (torch, numpy) to resume bit-for-bit
``extra``           free-form counters as a JSON string (episodes, wall time)
==================  =========================================================

Writes are atomic: the file is written to a temporary name, fsynced and renamed,
then ``latest.json`` is replaced the same way. A crash at any point leaves the
previous checkpoint as the latest; the temporary file a killed writer leaves
(``.ckpt-*.pt.*.tmp``, ``.latest.json.*.tmp``) is removed by the next writer when
it starts (:meth:`CheckpointStore.remove_stale_temp_files`). Loading checks the
SHA-256 recorded in ``latest.json`` and raises :class:`CheckpointError` naming the
file on mismatch.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fleetmind.core.errors import CheckpointError
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.core.spaces import SpaceSpec

FORMAT = "fleetmind.checkpoint/1"
LATEST = "latest.json"
_NAME = re.compile(r"^ckpt-(\d{12})\.pt$")
_TEMP = re.compile(r"^\.(ckpt-\d{12}\.pt|latest\.json)\..+\.tmp$")
"""Temporary names :func:`_atomic_write` gives (``mkstemp`` of ``.NAME.`` + ``.tmp``)."""

log = logging.getLogger(__name__)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class CheckpointStore:
    """Saves and loads checkpoints in ``directory``, keeping the newest ``keep``."""

    def __init__(self, directory: Path, keep: int = 3) -> None:
        self.directory = Path(directory)
        self.keep = keep

    def save(self, state: dict[str, Any]) -> Path:
        """Write ``state`` atomically as the new latest checkpoint; return its path."""
        state = {"format": FORMAT, **state}
        payload = encode_state(state)
        path = self.directory / f"ckpt-{int(state['env_steps']):012d}.pt"
        _atomic_write(path, payload)
        manifest = {
            "format": FORMAT,
            "file": path.name,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "env_steps": int(state["env_steps"]),
            "version": int(state.get("version", 0)),
        }
        _atomic_write(self.directory / LATEST, json.dumps(manifest, indent=2).encode())
        self._prune(keep_name=path.name)
        return path

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete the temporary files of writes that never finished; return their paths.

        Only the run's one checkpoint writer calls this, when it starts and before it
        saves: a temporary file is then never a write in progress. Checkpoints and
        ``latest.json`` are never touched.
        """
        if not self.directory.is_dir():
            return []
        stale = sorted(p for p in self.directory.iterdir() if _TEMP.match(p.name))
        for path in stale:
            path.unlink(missing_ok=True)
            log.info("removed %s, left by a checkpoint write that did not finish", path)
        return stale

    def _prune(self, keep_name: str) -> None:
        files = sorted(p for p in self.directory.glob("ckpt-*.pt") if _NAME.match(p.name))
        for old in files[: max(0, len(files) - self.keep)]:
            if old.name != keep_name:
                old.unlink(missing_ok=True)

    def latest_manifest(self) -> dict[str, Any]:
        """The parsed ``latest.json``; CheckpointError if missing or malformed."""
        manifest_path = self.directory / LATEST
        if not manifest_path.is_file():
            raise CheckpointError(
                f"no checkpoint in {self.directory}: {manifest_path} does not exist "
                "(was this run ever checkpointed?)"
            )
        try:
            manifest = json.loads(manifest_path.read_text())
            if not isinstance(manifest, dict) or not isinstance(manifest.get("file"), str):
                raise ValueError("missing 'file'")
            if not _NAME.match(manifest["file"]):
                raise ValueError(f"bad file name {manifest['file']!r}")
            return manifest
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{manifest_path} is corrupted: {exc}") from exc

    def exists(self) -> bool:
        """True when a latest checkpoint is recorded."""
        return (self.directory / LATEST).is_file()

    def load_latest(self) -> dict[str, Any]:
        """Load and verify the latest checkpoint."""
        manifest = self.latest_manifest()
        return load_file(self.directory / manifest["file"], manifest.get("sha256"))


def load_file(path: Path, sha256: str | None = None) -> dict[str, Any]:
    """Load one checkpoint file, verifying ``sha256`` when given."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} does not exist")
    payload = path.read_bytes()
    if sha256 is not None and hashlib.sha256(payload).hexdigest() != sha256:
        raise CheckpointError(
            f"checkpoint {path} is corrupted: its SHA-256 does not match {LATEST}; "
            "restore it or start a new run"
        )
    return decode_state(payload, f"checkpoint {path}")


def encode_state(state: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file holding ``state``."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    return buffer.getvalue()


def decode_state(payload: bytes, where: str) -> dict[str, Any]:
    """A checkpoint's state from its bytes (``weights_only``: tensors, numbers, strings,
    lists and dicts, nothing else is unpickled); ``where`` names it in errors."""
    try:
        state = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as exc:
        raise CheckpointError(f"{where} cannot be read: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not a {FORMAT} checkpoint")
    return state


def find_checkpoint_dir(path: Path) -> Path:
    """``path/checkpoints`` for a run directory, or ``path`` itself if it holds checkpoints."""
    path = Path(path)
    if (path / "checkpoints").is_dir():
        return path / "checkpoints"
    if (path / LATEST).is_file():
        return path
    raise CheckpointError(f"{path} holds no checkpoints: expected {path / 'checkpoints' / LATEST}")


def decode_json_field(state: dict[str, Any], key: str, where: Path | str) -> Any:
    """Parse a JSON-string field of a checkpoint, naming the file on failure."""
    try:
        return json.loads(state[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {where} has no valid {key!r} field: {exc}") from exc


def stats_to_state(stats: RunningMeanStd) -> dict[str, Any]:
    """Tensors and a count, loadable with ``weights_only=True``."""
    return {
        "mean": torch.from_numpy(np.asarray(stats.mean, dtype=np.float64).copy()),
        "var": torch.from_numpy(np.asarray(stats.var, dtype=np.float64).copy()),
        "count": float(stats.count),
    }


def stats_from_state(state: dict[str, Any], shape: tuple[int, ...]) -> RunningMeanStd:
    """Inverse of :func:`stats_to_state`."""
    try:
        mean = state["mean"].numpy().astype(np.float64)
        var = state["var"].numpy().astype(np.float64)
        count = float(state["count"])
    except (KeyError, AttributeError, TypeError) as exc:
        raise CheckpointError(f"malformed normaliser statistics in checkpoint: {exc}") from exc
    if mean.shape != shape or var.shape != shape:
        raise CheckpointError(f"normaliser statistics have shape {mean.shape}, expected {shape}")
    return RunningMeanStd(shape, mean, var, count)


def read_spaces(state: dict[str, Any]) -> tuple[SpaceSpec, SpaceSpec]:
    """Observation and action spaces recorded in a checkpoint."""
    try:
        spaces = json.loads(state["spaces"])
        return SpaceSpec.from_json(spaces["observation"]), SpaceSpec.from_json(spaces["action"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint has no valid space description: {exc}") from exc
