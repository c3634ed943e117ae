"""Finding SUMO and choosing how to talk to it, before sumo-rl is imported.

SUMO comes from the optional extra ``pip install 'fleetmind[sumo]'`` (the PyPI
``eclipse-sumo`` and ``libsumo`` wheels plus ``sumo-rl``) or from a system
install (``SUMO_HOME`` set, e.g. Debian's ``sumo`` package with
``SUMO_HOME=/usr/share/sumo``).

Two ways to talk to it:

* ``libsumo``: SUMO runs inside this process; about ten times faster, but one
  simulation per process, and SUMO dying takes the process with it.
* ``traci``: SUMO runs as a child process and is driven over a socket; any
  number of simulations per process, and a SUMO crash is an error the env
  recovers from on ``reset()``.

The choice is global to a process (``traci`` reads ``LIBSUMO_AS_TRACI`` once,
when first imported), so :func:`prepare_sumo` records it and refuses a
conflicting later request with a clear message.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Literal

from fleetmind.core.errors import PreconditionError

SumoBackend = Literal["auto", "libsumo", "traci"]
INSTALL_HINT = "pip install 'fleetmind[sumo]'"

# The backend this process committed to ("libsumo" or "traci"), once chosen.
_CHOSEN: dict[str, str] = {}


def find_sumo_home() -> Path | None:
    """SUMO_HOME: the environment variable, else the ``eclipse-sumo`` wheel, else a system path."""
    env = os.environ.get("SUMO_HOME")
    if env and Path(env).is_dir():
        return Path(env)
    if importlib.util.find_spec("sumo") is not None:
        module = importlib.import_module("sumo")
        home = getattr(module, "SUMO_HOME", None)
        if home and Path(home).is_dir():
            return Path(home)
    binary = shutil.which("sumo")
    if binary:
        for candidate in (Path("/usr/share/sumo"), Path(binary).resolve().parent.parent):
            if (candidate / "tools").is_dir():
                return candidate
    return None


def sumo_available() -> bool:
    """True when SUMO and sumo-rl are installed (tests use this to skip)."""
    return find_sumo_home() is not None and importlib.util.find_spec("sumo_rl") is not None


def _libsumo_installed() -> bool:
    return importlib.util.find_spec("libsumo") is not None


def _resolve(backend: SumoBackend) -> str:
    if "traci" in sys.modules:  # already imported: its mode is fixed
        current = "libsumo" if "LIBSUMO_AS_TRACI" in os.environ else "traci"
        return _CHOSEN.get("backend", current)
    if backend == "auto":
        return "libsumo" if _libsumo_installed() else "traci"
    return backend


def prepare_sumo(backend: SumoBackend = "auto") -> str:
    """Set SUMO_HOME and the traci mode; return the backend in use ("libsumo" or "traci").

    Raises PreconditionError with the install command when SUMO or sumo-rl is
    missing, or when this process already runs SUMO through the other backend.
    """
    home = find_sumo_home()
    if home is None or importlib.util.find_spec("sumo_rl") is None:
        raise PreconditionError(
            "the SUMO traffic scenarios need SUMO and sumo-rl, which are not installed; "
            f"install them with: {INSTALL_HINT}  (or set SUMO_HOME to an existing SUMO install)"
        )
    os.environ["SUMO_HOME"] = str(home)
    if backend == "libsumo" and not _libsumo_installed():
        raise PreconditionError(f"backend 'libsumo' needs the libsumo wheel: {INSTALL_HINT}")
    resolved = _resolve(backend)
    if backend not in ("auto", resolved):
        raise PreconditionError(
            f"this process already drives SUMO through {resolved}; backend {backend!r} "
            "can only be chosen before the first SUMO env is created (use a new process)"
        )
    if "traci" not in sys.modules:
        if resolved == "libsumo":
            os.environ["LIBSUMO_AS_TRACI"] = "quiet"
        else:
            os.environ.pop("LIBSUMO_AS_TRACI", None)
    _CHOSEN["backend"] = resolved
    return resolved


def import_sumo_rl() -> tuple[ModuleType, ModuleType]:
    """The ``sumo_rl.environment.env`` and ``traci`` modules (after :func:`prepare_sumo`)."""
    env_module = importlib.import_module("sumo_rl.environment.env")
    traci = importlib.import_module("traci")
    return env_module, traci


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send whatever SUMO prints (in-process or as a child) to stderr, not stdout.

    Keeps machine-readable output such as ``fleetmind baseline --json`` clean.
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (embedded interpreters)
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
