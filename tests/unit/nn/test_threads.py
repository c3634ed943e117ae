"""limit_threads bounds torch's and numpy's BLAS thread pools of the process."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, torch
from threadpoolctl import threadpool_info
from fleetmind.nn.threads import limit_threads
limit_threads(1)
blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
print(json.dumps({"torch": torch.get_num_threads(), "blas": blas}))
"""


def test_limit_threads_bounds_torch_and_blas() -> None:
    # A fresh interpreter: the limits are process-wide.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    threads = json.loads(out.stdout)
    assert threads["torch"] == 1
    assert threads["blas"]  # numpy's BLAS was found
    assert all(n == 1 for n in threads["blas"])
