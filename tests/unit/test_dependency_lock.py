"""requirements/lock.txt agrees with pyproject.toml (regenerate it with scripts/lock).

scripts/bootstrap installs with the lock as pip constraints. A requirement the lock
lacks would be installed at whatever version is newest that day; a locked version
outside pyproject's range would make the install fail.
"""

import tomllib
from collections import defaultdict
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock.txt"
FIX = "run scripts/lock and commit requirements/lock.txt"


def parse_lock(text: str) -> dict[str, list[Version]]:
    """Locked versions by package (several where the lock forks by Python version)."""
    locked: dict[str, list[Version]] = defaultdict(list)
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{line!r} in {LOCK.name} is not an exact pin"
        locked[canonicalize_name(req.name)].append(Version(spec.version))
    return locked


def declared() -> list[tuple[str, Requirement]]:
    """Every requirement of pyproject.toml and requirements/bootstrap.in, with its source."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out = [("dependencies", Requirement(r)) for r in project["dependencies"]]
    for extra, reqs in project["optional-dependencies"].items():
        out += [(f"[{extra}]", Requirement(r)) for r in reqs]
    bootstrap = ROOT / "requirements" / "bootstrap.in"
    for raw in bootstrap.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append((bootstrap.name, Requirement(line)))
    return out


def disagreements(locked: dict[str, list[Version]]) -> list[str]:
    problems = []
    for source, req in declared():
        versions = locked.get(canonicalize_name(req.name))
        if not versions:
            problems.append(f"{req.name} ({source}) is not in {LOCK.name}")
            continue
        for version in versions:
            if not req.specifier.contains(version, prereleases=True):
                problems.append(f"{req.name}=={version} is outside {req} ({source})")
    return problems


def test_lock_covers_every_requirement_within_its_range() -> None:
    problems = disagreements(parse_lock(LOCK.read_text(encoding="utf-8")))
    assert not problems, f"{LOCK.name} disagrees with pyproject.toml ({FIX}):\n" + "\n".join(
        problems
    )


def test_bootstrap_pins_the_cpu_torch() -> None:
    assert parse_lock(LOCK.read_text(encoding="utf-8"))["torch"] == [Version("2.13.0")]


def test_a_missing_or_out_of_range_pin_is_reported() -> None:
    locked = parse_lock(LOCK.read_text(encoding="utf-8"))
    del locked["gymnasium"]
    locked |= parse_lock("protobuf==7.0.1 ; python_full_version >= '3.12'  # via a\n")
    assert disagreements(locked) == [
        "gymnasium (dependencies) is not in lock.txt",
        "protobuf==7.0.1 is outside protobuf<7,>=6.33.5 (dependencies)",
    ]
