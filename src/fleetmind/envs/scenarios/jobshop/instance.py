"""Job-shop instances: read the two standard text formats, ship Taillard's, generate more.

An instance has ``n`` jobs of ``m`` operations each; operation ``k`` of job ``j``
runs on machine ``machines[j, k]`` for ``durations[j, k]`` time units, after
operation ``k - 1`` of the same job. Machines are numbered from 0 in memory.

Two text formats are read (``parse_instance`` tells them apart):

* **OR-Library**: optional comment lines, then ``n m``, then one line per job
  with ``m`` pairs ``machine duration`` (machines from 0)::

      2 2
      0 3 1 2
      1 4 0 1

* **Taillard**: ``n m`` (Taillard's own files add seeds and bounds on this line
  and a ``Nb of jobs, ...`` line above it), then ``n`` lines of durations, then
  ``n`` lines of machines (from 1); the blocks may be headed ``Times`` and
  ``Machines``.

A malformed file raises ConfigError naming its line: a machine out of range, a
negative duration, a job with too few or too many operations, a truncated file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from fleetmind.core.errors import ConfigError, NotFoundError, UnknownNameError

TAILLARD_OPTIMA: dict[str, int] = {
    "ta01": 1231, "ta02": 1244, "ta03": 1218, "ta04": 1175, "ta05": 1224,
    "ta06": 1238, "ta07": 1227, "ta08": 1217, "ta09": 1274, "ta10": 1241,
}  # fmt: skip
"""Known optimal makespans of Taillard's 15x15 instances (all proven)."""

SHIPPED_OPTIMA: dict[str, int] = {**TAILLARD_OPTIMA, "ft06": 55}
"""Every instance shipped in ``data/`` with its optimal makespan (ft06: Fisher and
Thompson's 6x6)."""

_LABELS = re.compile(r"^(nb of jobs|times|machines)\b", re.IGNORECASE)


@dataclass(frozen=True)
class JobShopInstance:
    """``n`` jobs of ``m`` operations; see the module docstring."""

    machines: np.ndarray
    """``[n, m]`` int: the machine of each operation, numbered from 0."""
    durations: np.ndarray
    """``[n, m]`` int: the processing time of each operation (>= 0)."""
    name: str = "instance"
    optimum: int | None = None
    """The known optimal makespan, if any."""

    def __post_init__(self) -> None:
        if self.machines.shape != self.durations.shape or self.machines.ndim != 2:
            raise ConfigError(
                f"instance {self.name}: machines {self.machines.shape} and durations "
                f"{self.durations.shape} must both be [jobs, operations]"
            )
        if self.machines.size == 0:
            raise ConfigError(f"instance {self.name} has no operations")

    @property
    def num_jobs(self) -> int:
        return int(self.machines.shape[0])

    @property
    def num_ops(self) -> int:
        """Operations per job."""
        return int(self.machines.shape[1])

    @property
    def num_machines(self) -> int:
        """``m`` (the formats' convention: as many machines as operations per job)."""
        return max(self.num_ops, int(self.machines.max()) + 1)

    def lower_bound(self) -> int:
        """max(longest job, busiest machine): no schedule is shorter."""
        job = int(self.durations.sum(axis=1).max())
        load = np.bincount(self.machines.ravel(), self.durations.ravel()).max()
        return max(job, int(load))


def _numeric_lines(text: str) -> list[tuple[int, list[str]]]:
    """``(line number, tokens)`` of every line that holds numbers, comments skipped."""
    out: list[tuple[int, list[str]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or _LABELS.match(line):
            continue
        tokens = line.split()
        if not all(re.fullmatch(r"[+-]?\d+", t) for t in tokens):
            if out:  # text after the header line is an error; before it, a comment
                raise ConfigError(f"line {number}: expected integers, got {raw.strip()!r}")
            continue
        out.append((number, tokens))
    return out


def parse_instance(text: str, name: str = "instance", source: str = "") -> JobShopInstance:
    """The instance in ``text`` (OR-Library or Taillard format, told apart by the
    length of the first job line); ConfigError naming the line when malformed."""
    where = f"{source}: " if source else ""
    try:
        rows = _numeric_lines(text)
        if not rows:
            raise ConfigError("no 'jobs machines' header line: the file holds no numbers")
        (head_line, head), body = rows[0], rows[1:]
        if len(head) < 2:
            raise ConfigError(f"line {head_line}: header must start with 'jobs machines'")
        jobs, ops = int(head[0]), int(head[1])
        if jobs <= 0 or ops <= 0:
            raise ConfigError(f"line {head_line}: {jobs} jobs and {ops} machines must be positive")
        if body and len(body[0][1]) == 2 * ops and ops > 0:
            return _parse_orlib(body, jobs, ops, name)
        return _parse_taillard(body, jobs, ops, name)
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None


def _check_count(line: int, job: int, found: int, ops: int, unit: str) -> None:
    if found != ops:
        what = "is missing operations" if found < ops else "has too many operations"
        raise ConfigError(
            f"line {line}: job {job} {what}: {found} {unit}, expected {ops} (one per machine)"
        )


def _truncated(body: list[tuple[int, list[str]]], want: int, what: str) -> ConfigError:
    last = body[-1][0] if body else "the header"
    return ConfigError(
        f"truncated: expected {want} {what} lines, found {len(body)} (file ends after line {last})"
    )


def _build(
    machines: list[list[int]],
    durations: list[list[int]],
    lines: tuple[list[int], list[int]],
    name: str,
    one_based: bool,
) -> JobShopInstance:
    """The instance; ``lines`` holds the file line of each job's machines and durations."""
    m = np.asarray(machines, dtype=np.int64) - (1 if one_based else 0)
    d = np.asarray(durations, dtype=np.int64)
    ops, low = m.shape[1], (1 if one_based else 0)
    for (j, k), value in np.ndenumerate(d):
        if value < 0:
            raise ConfigError(
                f"line {lines[1][j]}: job {j} operation {k}: negative processing time {value}"
            )
    for (j, k), machine in np.ndenumerate(m):
        if not 0 <= machine < ops:
            raise ConfigError(
                f"line {lines[0][j]}: job {j} operation {k}: machine {machine + low} out of "
                f"range {low}..{ops - 1 + low}"
            )
    return JobShopInstance(m, d, name=name, optimum=SHIPPED_OPTIMA.get(name))


def _parse_orlib(
    body: list[tuple[int, list[str]]], jobs: int, ops: int, name: str
) -> JobShopInstance:
    if len(body) < jobs:
        raise _truncated(body, jobs, "job")
    if len(body) > jobs:
        raise ConfigError(f"line {body[jobs][0]}: more lines than the {jobs} jobs of the header")
    machines, durations = [], []
    for job, (line, tokens) in enumerate(body):
        if len(tokens) % 2:
            raise ConfigError(f"line {line}: job {job} has an odd number of values")
        _check_count(line, job, len(tokens) // 2, ops, "machine-duration pairs")
        values = [int(t) for t in tokens]
        machines.append(values[0::2])
        durations.append(values[1::2])
    numbers = [line for line, _ in body]
    return _build(machines, durations, (numbers, numbers), name, one_based=False)


def _parse_taillard(
    body: list[tuple[int, list[str]]], jobs: int, ops: int, name: str
) -> JobShopInstance:
    if len(body) < 2 * jobs:
        raise _truncated(body, 2 * jobs, "duration and machine")
    if len(body) > 2 * jobs:
        raise ConfigError(f"line {body[2 * jobs][0]}: more lines than the 2 x {jobs} expected")
    for job, (line, tokens) in enumerate(body):
        _check_count(line, job % jobs, len(tokens), ops, "values")
    durations = [[int(t) for t in tokens] for _, tokens in body[:jobs]]
    machines = [[int(t) for t in tokens] for _, tokens in body[jobs:]]
    numbers = [line for line, _ in body]
    return _build(machines, durations, (numbers[jobs:], numbers[:jobs]), name, one_based=True)


def load_instance(path: str | Path) -> JobShopInstance:
    """The instance in the file ``path``; NotFoundError when it does not exist."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise NotFoundError(f"instance file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read instance file {path}: {exc}") from None
    return parse_instance(text, name=path.stem, source=str(path))


def shipped_instance(name: str) -> JobShopInstance:
    """A shipped instance (``ta01`` .. ``ta10``, ``ft06``) with its optimum."""
    if name not in SHIPPED_OPTIMA:
        raise UnknownNameError(
            f"no shipped instance {name!r}; choose one of {', '.join(SHIPPED_OPTIMA)}"
        )
    text = resources.files(__package__).joinpath("data", f"{name}.txt").read_text()
    return parse_instance(text, name=name)


def random_instance(
    jobs: int, machines: int, seed: int, low: int = 1, high: int = 99
) -> JobShopInstance:
    """Taillard-style random instance: every job visits every machine once in a random
    order, durations uniform in ``[low, high]``; the same seed, the same instance."""
    if jobs <= 0 or machines <= 0:
        raise ConfigError(f"{jobs=} and {machines=} must be positive")
    if not 0 <= low <= high:
        raise ConfigError(f"durations need 0 <= low <= high, got {low=} {high=}")
    rng = np.random.default_rng(seed)
    durations = rng.integers(low, high + 1, size=(jobs, machines))
    order = np.argsort(rng.random((jobs, machines)), axis=1)
    return JobShopInstance(order, durations, name=f"random-{jobs}x{machines}-s{seed}")


def to_orlib_text(instance: JobShopInstance) -> str:
    """The instance in OR-Library format."""
    lines = [f"{instance.num_jobs} {instance.num_ops}"]
    for machines, durations in zip(instance.machines, instance.durations, strict=True):
        lines.append(" ".join(f"{m} {d}" for m, d in zip(machines, durations, strict=True)))
    return "\n".join(lines) + "\n"


def to_taillard_text(instance: JobShopInstance) -> str:
    """The instance in Taillard's format (machines from 1)."""
    lines = [f"{instance.num_jobs} {instance.num_ops}", "Times"]
    lines += [" ".join(str(d) for d in row) for row in instance.durations]
    lines.append("Machines")
    lines += [" ".join(str(m + 1) for m in row) for row in instance.machines]
    return "\n".join(lines) + "\n"
