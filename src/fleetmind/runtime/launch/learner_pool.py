"""Several learner processes on this machine, started the way torchrun starts them.

``fleetmind train ENV --actors N --learners L`` prepares the run directory, then
starts L ``fleetmind learner --join DIR`` children with torchrun's variables
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR=127.0.0.1`` and a free
``MASTER_PORT``). Each serves its own ``unix:`` socket and prints its address;
actor k then feeds learner k % L. Learner R logs to ``RUN_DIR/learners/learner-R.log``.

If a learner exits abnormally the group cannot go on (its collectives fail): rank 0
writes a final checkpoint, the launcher stops the rest and raises
:class:`UnavailableError` telling the user to ``--resume``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from fleetmind.core.errors import UnavailableError
from fleetmind.rpc.server import free_port
from fleetmind.runtime.launch.actor_pool import ActorPool
from fleetmind.runtime.launch.children import child_env
from fleetmind.runtime.result import TrainResult

log = logging.getLogger("fleetmind.launcher")

START_TIMEOUT_S = 300.0
"""Longest wait for every learner to listen."""
STOP_GRACE_S = 60.0
"""After a learner failed: how long rank 0 gets to write its final checkpoint."""


class LearnerProcesses:
    """L learner children of one run, with what each printed on stdout."""

    def __init__(self, run_dir: Path, count: int, sock_dir: Path) -> None:
        self.run_dir = run_dir
        self.count = count
        self.sock_dir = sock_dir
        self.port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.outputs: list[list[dict[str, Any]]] = [[] for _ in range(count)]
        self._readers: list[threading.Thread] = []

    def environment(self, rank: int) -> dict[str, str]:
        """torchrun's variables for learner ``rank``."""
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(self.count),
            "LOCAL_WORLD_SIZE": str(self.count),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(self.port),
        }

    def address(self, rank: int) -> str:
        """Where learner ``rank`` listens (known before it starts)."""
        return f"unix:{self.sock_dir}/learner-{rank}.sock"

    def command(self, rank: int) -> list[str]:
        """The command line of learner ``rank``."""
        return [
            sys.executable, "-m", "fleetmind", "learner", "--join", str(self.run_dir),
            "--listen", self.address(rank), "--no-progress",
        ]  # fmt: skip

    def log_path(self, rank: int) -> Path:
        """Where learner ``rank`` logs."""
        return self.run_dir / "learners" / f"learner-{rank}.log"

    def start(self) -> None:
        """Spawn every learner; a thread per learner collects its stdout JSON lines."""
        (self.run_dir / "learners").mkdir(parents=True, exist_ok=True)
        for rank in range(self.count):
            with self.log_path(rank).open("ab") as fh:
                proc = subprocess.Popen(
                    self.command(rank),
                    stdout=subprocess.PIPE,
                    stderr=fh,
                    env=child_env(self.environment(rank)),
                )
            self.procs.append(proc)
            reader = threading.Thread(target=self._read, args=(rank,), daemon=True)
            reader.start()
            self._readers.append(reader)

    def _read(self, rank: int) -> None:
        stream = self.procs[rank].stdout
        if stream is None:
            return
        for line in stream:
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                self.outputs[rank].append(data)

    def addresses(self, timeout_s: float = START_TIMEOUT_S) -> list[str]:
        """Every learner's address, once all listen; UnavailableError if one exits first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [next((o["listening"] for o in out if "listening" in o), None)
                     for out in self.outputs]  # fmt: skip
            if all(a is not None for a in found):
                return [str(a) for a in found]
            failed = self.failed()
            if failed is not None:
                raise self._failure(failed)
            time.sleep(0.1)
        raise UnavailableError(
            f"the learners did not all listen within {timeout_s:.0f}s; see {self.log_path(0)}"
        )

    def failed(self) -> int | None:
        """The rank of a learner that exited abnormally, if any (killed ones first)."""
        codes = [(rank, proc.poll()) for rank, proc in enumerate(self.procs)]
        bad = [(rank, code) for rank, code in codes if code is not None and code != 0]
        bad.sort(key=lambda item: (item[1] or 0) >= 0)  # a signal before an error exit
        return bad[0][0] if bad else None

    def _failure(self, rank: int) -> UnavailableError:
        code = self.procs[rank].returncode
        last = _last_line(self.log_path(rank))
        return UnavailableError(
            f"learner {rank} exited with code {code} ({last}); the run stopped and rank 0 "
            f"saved a final checkpoint if it could; continue it with: fleetmind train "
            f"--resume {self.run_dir}"
        )

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to every learner still running."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(sig)

    def wait(self) -> TrainResult:
        """Wait for the group to finish; rank 0's summary, or UnavailableError."""
        while any(p.poll() is None for p in self.procs):
            failed = self.failed()
            if failed is not None:
                self._drain_after_failure()
                raise self._failure(failed)
            time.sleep(0.2)
        failed = self.failed()
        if failed is not None:
            raise self._failure(failed)
        for reader in self._readers:
            reader.join(timeout=5.0)
        summary = next((o for o in reversed(self.outputs[0]) if "run_dir" in o), None)
        if summary is None:
            raise UnavailableError(f"learner 0 printed no summary; see {self.log_path(0)}")
        return TrainResult(**summary)

    def _drain_after_failure(self) -> None:
        """Give rank 0 time for its final checkpoint, then stop everyone."""
        deadline = time.monotonic() + STOP_GRACE_S
        while self.procs[0].poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        self.close()

    def close(self, timeout_s: float = 10.0) -> None:
        """SIGTERM every learner still running, SIGKILL after ``timeout_s``."""
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in self.procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip()[-300:] if lines else "no log"


def run_learner_group(run_dir: Path, count: int, sock_dir: Path, actors: ActorPool) -> TrainResult:
    """Start ``count`` learners on the prepared ``run_dir`` and the actors; wait for the end.

    SIGINT or SIGTERM to the launcher is passed on to the learners, which stop
    together and save a final checkpoint.
    """
    group = LearnerProcesses(run_dir, count, sock_dir)

    def forward(signum: int, frame: FrameType | None) -> None:
        log.warning("%s received: stopping the learners", signal.Signals(signum).name)
        group.signal_all(signal.SIGTERM)

    main = threading.current_thread() is threading.main_thread()
    previous = (
        {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    )
    try:
        group.start()
        addresses = group.addresses()
        log.info("%d learners listening: %s", count, ", ".join(addresses))
        actors.start(addresses)
        return group.wait()
    finally:
        group.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
