"""The explainer process's scheduling class: SCHED_IDLE where the OS allows it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from fleetmind.serve import explain_process


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux only")
def test_a_refused_idle_class_leaves_nice_alone_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(pid: int, policy: int, param: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    with caplog.at_level(logging.WARNING, logger="fleetmind.serve.explain_process"):
        explain_process._idle_class()  # no exception: nice alone still applies
    assert "SCHED_IDLE refused" in caplog.text
    assert "Operation not permitted" in caplog.text


def test_without_the_idle_class_nothing_is_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "SCHED_IDLE", raising=False)
    monkeypatch.setattr(os, "sched_setscheduler", lambda *a: pytest.fail("called"))
    explain_process._idle_class()


def test_the_explainer_computes_the_quadrature_points_once() -> None:
    # in a child process: the cache replaces numpy's function in the process it runs in
    script = (
        "import numpy as np\n"
        "from fleetmind.serve.explain_process import _cache_quadrature\n"
        "exact = np.polynomial.legendre.leggauss(64)\n"
        "_cache_quadrature(); _cache_quadrature()\n"
        "first = np.polynomial.legendre.leggauss(64)\n"
        "again = np.polynomial.legendre.leggauss(64)\n"
        "assert first is again\n"
        "assert all(np.array_equal(a, b) for a, b in zip(exact, first))\n"
        "info = np.polynomial.legendre.leggauss.cache_info()\n"
        "assert (info.hits, info.misses) == (1, 1), info\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
