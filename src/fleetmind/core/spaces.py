"""Plain descriptions of observation and action spaces.

A :class:`SpaceSpec` is what a checkpoint, a served model's metadata and a wire
message need to know about a space, without importing Gymnasium. The envs layer
converts Gymnasium spaces to and from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fleetmind.core.errors import InvalidInputError

SpaceKind = Literal["discrete", "box", "multi_discrete"]


@dataclass(frozen=True)
class SpaceSpec:
    """A discrete, box or multi-discrete space."""

    kind: SpaceKind
    """Which family of space this is."""
    shape: tuple[int, ...]
    """Shape of one element (``()`` for a discrete space)."""
    dtype: str
    """numpy dtype name of one element."""
    n: int | None = None
    """Number of choices of a discrete space; ``None`` for other kinds."""
    nvec: tuple[int, ...] | None = None
    """Choices per component of a multi-discrete space."""
    low: tuple[float, ...] | None = None
    """Flattened lower bounds of a box space (``-inf`` allowed)."""
    high: tuple[float, ...] | None = None
    """Flattened upper bounds of a box space (``inf`` allowed)."""

    @property
    def flat_dim(self) -> int:
        """Number of scalars in one element once flattened (one-hot for discrete)."""
        if self.kind == "discrete":
            return int(self.n or 0)
        if self.kind == "multi_discrete":
            return int(sum(self.nvec or ()))
        return int(math.prod(self.shape))

    @property
    def is_bounded(self) -> bool:
        """True for a box whose every bound is finite."""
        if self.kind != "box" or self.low is None or self.high is None:
            return False
        return bool(np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high)))

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict (infinite bounds become strings)."""

        def enc(values: tuple[float, ...] | None) -> list[float | str] | None:
            if values is None:
                return None
            return [v if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in values]

        return {
            "kind": self.kind,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "n": self.n,
            "nvec": list(self.nvec) if self.nvec is not None else None,
            "low": enc(self.low),
            "high": enc(self.high),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpaceSpec:
        """Inverse of :meth:`to_json`."""

        def dec(values: list[float | str] | None) -> tuple[float, ...] | None:
            return None if values is None else tuple(float(v) for v in values)

        try:
            return cls(
                kind=data["kind"],
                shape=tuple(int(s) for s in data["shape"]),
                dtype=str(data["dtype"]),
                n=None if data.get("n") is None else int(data["n"]),
                nvec=None if data.get("nvec") is None else tuple(int(v) for v in data["nvec"]),
                low=dec(data.get("low")),
                high=dec(data.get("high")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed space description {data!r}: {exc}") from exc

    def check_batch(self, batch: np.ndarray, what: str = "observation") -> None:
        """Raise :class:`InvalidInputError` unless ``batch`` is ``[B, *shape]``."""
        if batch.ndim != len(self.shape) + 1 or tuple(batch.shape[1:]) != self.shape:
            expected = "[B" + "".join(f", {s}" for s in self.shape) + "]"
            raise InvalidInputError(
                f"{what} batch has shape {list(batch.shape)}; expected {expected}"
            )
