"""A site that sends non-finite weights is left out of a real run, which completes.

The run goes in a child process, as ``fleetmind federate`` runs: ray leaves files and
pipes for the interpreter to close at exit, which a test process would report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.federated.procs import SRC

from fleetmind.runtime.evaluate import evaluate
from fleetmind.runtime.run_dir import read_metrics

SCRIPT = """
import json, sys
from pathlib import Path
import numpy as np
from flwr.app import Array, ArrayRecord, MessageType
from fleetmind.federated.global_run import create_run_dir
from fleetmind.federated.run import prepare, simulate
from fleetmind.federated.settings import FederationSettings


def poison_site_0(message, context, call_next):
    out = call_next(message, context)
    train = message.metadata.message_type == MessageType.TRAIN
    if train and not out.has_error() and int(context.node_config["partition-id"]) == 0:
        arrays = out.content["arrays"]
        out.content["arrays"] = ArrayRecord(
            {k: Array(np.full_like(v.numpy(), np.nan)) for k, v in arrays.items()}
        )
    return out


settings = FederationSettings(
    env_id="CartPole-v1", sites=3, rounds=2, local_steps=256, eval_episodes=2,
    run_dir=Path(sys.argv[1]),
)
prepare(settings)
create_run_dir(settings, None, force=False)
print(json.dumps(simulate(settings, client_mods=[poison_site_0])))
"""


@pytest.mark.slow
def test_a_hostile_site_is_excluded_and_counted(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(run_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["excluded_updates"] == 2
    assert [row["excluded_updates"] for row in read_metrics(run_dir)] == [1, 1]
    assert np.isfinite(evaluate(run_dir, episodes=2).mean_return)
