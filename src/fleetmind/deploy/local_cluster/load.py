"""A steady load of inference calls through the client SDK, for the one-machine cluster.

::

    python -m fleetmind.deploy.local_cluster.load dns:///cartpole.agents.svc.cluster.local:8001 \
        --model cartpole --callers 16 --token-file tokens

``--callers`` threads share one :class:`fleetmind.serve.Client` (one channel, as a
client process would) and call ``ModelInfer`` back to back (or ``--rate`` calls a
second in all) until SIGTERM or SIGINT.
The first successful call prints ``{"started": true}``; at the end one JSON line
reports the calls made, how many succeeded and the failures by status code.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from fleetmind.core.errors import FleetmindError
from fleetmind.rpc.auth import read_tokens
from fleetmind.serve.client import Client

ERRORS_KEPT = 5


class Load:
    """Callers on one client; :meth:`summary` once they stopped."""

    def __init__(
        self, client: Client, model: str, obs_dim: int, callers: int, rate: float | None = None
    ) -> None:
        self.client = client
        self.interval_s = callers / rate if rate else 0.0
        """Time between two calls of one caller (0: back to back)."""
        self.model = model
        self.obs = np.zeros((1, obs_dim), dtype=np.float32)
        self.stop = threading.Event()
        self.started = threading.Event()
        self.ok = 0
        self.failed: Counter[str] = Counter()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._call, daemon=True) for _ in range(callers)]

    def run(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def _call(self) -> None:
        ok = 0
        due = time.monotonic()
        while not self.stop.is_set():
            if self.interval_s:
                due += self.interval_s
                if self.stop.wait(max(0.0, due - time.monotonic())):
                    break
            try:
                self.client.infer(self.model, self.obs)
            except FleetmindError as exc:
                with self._lock:
                    self.failed[str(exc).split(":", 1)[0]] += 1
                    if len(self.errors) < ERRORS_KEPT:
                        self.errors.append(str(exc))
                continue
            ok += 1
            if ok == 1:
                self.started.set()
        with self._lock:
            self.ok += ok

    def summary(self) -> dict[str, Any]:
        failed = sum(self.failed.values())
        return {
            "calls": self.ok + failed,
            "ok": self.ok,
            "failed": failed,
            "failed_by_status": dict(self.failed),
            "errors": self.errors,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="gRPC target, e.g. dns:///NAME.NS.svc.cluster.local:8001")
    parser.add_argument("--model", required=True)
    parser.add_argument("--callers", type=int, default=8, help="calls in flight at once")
    parser.add_argument("--rate", type=float, help="calls per second in all (default: no pause)")
    parser.add_argument("--obs-dim", type=int, default=4)
    parser.add_argument("--token-file", type=Path)
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of one call (s)")
    args = parser.parse_args(argv)
    token = read_tokens(args.token_file)[0] if args.token_file else None
    with Client(args.target, token=token, timeout_s=args.timeout) as client:
        load = Load(client, args.model, args.obs_dim, args.callers, args.rate)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: load.stop.set())
        load.run()
        while not load.stop.is_set():
            if load.started.wait(0.5):
                print(json.dumps({"started": True}), flush=True)
                break
        load.stop.wait()
        load.join()
    print(json.dumps(load.summary()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
