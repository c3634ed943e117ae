"""The explainer process: started by the first explained request, niced, replaced
when it dies, stopped with the server, and never in the way of plain requests."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fleetmind.core.errors import OverloadedError, UnavailableError
from fleetmind.serve.client import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.explain_process import NICE, ExplainProcess
from fleetmind.serve.explainer import MAX_PENDING, Explainer
from fleetmind.serve.testing import ServerThread, write_toy_checkpoint

from .test_serve_explain import OBS, _expected, _ppo_agent, loader


def _gone(pid: int) -> bool:
    """True once ``pid`` is neither running nor a zombie waiting for its parent."""
    return not Path(f"/proc/{pid}").exists()


def _dead(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie until its parent reaps it, or gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_until_dead(pid: int) -> None:
    deadline = time.monotonic() + 10
    while not _dead(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.01)


def _process(server: ServerThread) -> ExplainProcess:
    return server.server.repository.get("ppo").explainer.process


def _server(root: Path) -> ServerThread:
    write_toy_checkpoint(root / "ppo" / "1", seed=3)
    return ServerThread(root, ServeConfig(host="127.0.0.1", port=0, reload_interval_s=None), loader)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    with _server(tmp_path) as running:
        yield running


def test_started_by_the_first_explanation_niced_and_stopped_with_the_server(
    tmp_path: Path,
) -> None:
    with _server(tmp_path) as server, Client(f"127.0.0.1:{server.port}", timeout_s=60) as client:
        client.infer("ppo", OBS)
        assert _process(server).pid is None  # a server that never explains starts none
        client.infer("ppo", OBS, explain=True)
        pid = _process(server).pid
        assert pid is not None
        assert pid != os.getpid()
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) >= min(own + NICE, 19)
        if hasattr(os, "SCHED_IDLE"):  # Linux: below every niced process
            assert os.sched_getscheduler(pid) == os.SCHED_IDLE
    assert _gone(pid)


def test_a_killed_explainer_is_replaced_and_reaped(server: ServerThread) -> None:
    with Client(f"127.0.0.1:{server.port}", timeout_s=60) as client:
        client.infer("ppo", OBS, explain=True)
        first = _process(server).pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        _wait_until_dead(first)
        assert client.infer("ppo", OBS)["action"].shape == (3,)  # plain: unaffected
        explained = client.infer("ppo", OBS, explain=True)
    np.testing.assert_allclose(explained["attributions"], _expected(), rtol=1e-5, atol=1e-6)
    second = _process(server).pid
    assert second is not None
    assert second != first
    assert _gone(first)


def test_death_during_an_integral_is_unavailable_then_the_next_one_works() -> None:
    agent, rows = _ppo_agent(), np.repeat(OBS, 2000, axis=0)

    async def scenario() -> None:
        process = ExplainProcess()
        key = process.register()
        try:
            await process.attribute(key, agent, OBS)  # started, the agent sent
            pid = process.pid
            assert pid is not None
            slow = asyncio.ensure_future(process.attribute(key, agent, rows))
            await asyncio.sleep(0.2)
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(UnavailableError, match="explainer process died"):
                await slow
            assert _gone(pid)
            got = await process.attribute(key, agent, OBS)
            np.testing.assert_allclose(got, _expected(), rtol=1e-5, atol=1e-6)
            await process.forget(key)
        finally:
            await process.close()
        assert process.pid is None

    asyncio.run(scenario())


def test_close_stops_a_child_in_the_middle_of_an_integral() -> None:
    agent, rows = _ppo_agent(), np.repeat(OBS, 2000, axis=0)

    async def scenario() -> None:
        process = ExplainProcess()
        key = process.register()
        await process.attribute(key, agent, OBS)
        pid = process.pid
        assert pid is not None
        slow = asyncio.ensure_future(process.attribute(key, agent, rows))
        await asyncio.sleep(0.2)
        start = time.monotonic()
        await process.close()
        assert time.monotonic() - start < 5
        with pytest.raises(UnavailableError):
            await slow
        assert _gone(pid)
        with pytest.raises(UnavailableError, match="stopping"):
            await process.attribute(key, agent, OBS)

    asyncio.run(scenario())


class _HeldProcess(ExplainProcess):
    """An explainer process that answers only once released (no child)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.calls = 0

    async def attribute(self, key: int, agent: object, rows: np.ndarray) -> np.ndarray:
        self.calls += 1
        await self.release.wait()
        return np.zeros_like(rows)


def test_a_full_version_refuses_and_deadlines_do_not_free_its_places() -> None:
    async def scenario() -> None:
        process = _HeldProcess()
        explainer = Explainer(_ppo_agent(), "ppo", process)
        waiting = [asyncio.ensure_future(explainer.attributions(OBS)) for _ in range(MAX_PENDING)]
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError, match="explanations waiting"):
            await explainer.attributions(OBS)
        for task in waiting[:4]:  # callers whose deadline passed: still computing
            task.cancel()
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError):
            await explainer.attributions(OBS)
        process.release.set()
        await asyncio.gather(*waiting[4:])
        assert (await explainer.attributions(OBS)).shape == OBS.shape
        assert process.calls == MAX_PENDING + 1

    asyncio.run(scenario())
