"""Training runs with a tiny step budget: files, resume, signals."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import fleetmind
from fleetmind.algos.checkpoint import CheckpointStore
from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.core.errors import CheckpointError, RunDirError
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.local import resume, train

SMALL = PPOConfig(rollout_steps=16, minibatch_size=64, update_epochs=2)


def _train(run_dir: Path, steps: int = 512, **kw: object) -> object:
    cfg = TrainConfig(env_id="CartPole-v1", steps=steps, envs=4, run_dir=run_dir, **kw)  # type: ignore[arg-type]
    return train(cfg, SMALL, progress=False)


def test_run_directory_contents(run_dir: Path) -> None:
    result = _train(run_dir, target_return=1e9)
    assert {"config.json", "metrics.jsonl", "curve.png", "summary.json"} <= {
        p.name for p in run_dir.iterdir()
    }
    assert any(p.name.startswith("events.out.tfevents") for p in run_dir.iterdir())
    config = json.loads((run_dir / "config.json").read_text())
    assert config["env_id"] == "CartPole-v1"
    assert config["ppo"]["rollout_steps"] == 16
    record = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    for key in ("env_steps", "wall_time_s", "episodes", "episode_return_mean", "steps_per_s"):
        assert key in record
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["solved"] is False
    assert summary["env_steps"] == 512
    assert summary["solved_at_env_steps"] is None
    assert CheckpointStore(run_dir / "checkpoints").load_latest()["env_steps"] == 512
    assert result.env_steps == 512  # type: ignore[attr-defined]


def test_target_return_stops_early_and_records_solve(run_dir: Path) -> None:
    result = _train(run_dir, steps=100_000, target_return=5.0)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["solved"] is True
    assert summary["solved_at_env_steps"] == summary["env_steps"] < 100_000
    assert summary["solved_at_wall_time_s"] > 0
    assert result.solved  # type: ignore[attr-defined]


def test_refuses_non_empty_run_dir_and_keeps_it(run_dir: Path) -> None:
    run_dir.mkdir()
    (run_dir / "precious.txt").write_text("keep me")
    with pytest.raises(RunDirError, match=r"not empty.*--resume.*--force"):
        _train(run_dir)
    assert (run_dir / "precious.txt").read_text() == "keep me"


def test_resume_restores_state_exactly(run_dir: Path) -> None:
    _train(run_dir, steps=256)
    saved = CheckpointStore(run_dir / "checkpoints").load_latest()
    resume(run_dir, {"steps": 512}, progress=False)
    store = CheckpointStore(run_dir / "checkpoints")
    final = store.load_latest()
    assert final["env_steps"] == 512
    assert final["version"] == saved["version"] + 4
    # normaliser statistics continued from the checkpoint rather than restarting
    assert float(final["normalizer"]["count"]) > float(saved["normalizer"]["count"])
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["env_steps"] == 512
    assert metrics[-1]["episodes"] >= metrics[0]["episodes"]


def test_resume_removes_what_a_killed_writer_left(run_dir: Path) -> None:
    _train(run_dir, steps=256)
    ckpts = run_dir / "checkpoints"
    live = sorted(p.name for p in ckpts.iterdir())
    # the names the atomic writers give their temporary files
    fd, name = tempfile.mkstemp(prefix=".ckpt-000000000384.pt.", suffix=".tmp", dir=ckpts)
    os.close(fd)
    stale = [Path(name), run_dir / ".summary.json.tmp"]
    stale[1].write_text("{")
    resume(run_dir, {"steps": 512}, progress=False)
    assert not any(p.exists() for p in stale)
    assert set(live) < {p.name for p in ckpts.iterdir()}  # the older checkpoint is kept
    assert CheckpointStore(ckpts).load_latest()["env_steps"] == 512


def test_resume_restores_optimizer_and_rng(run_dir: Path) -> None:
    from fleetmind.algos.loading import load_agent

    _train(run_dir, steps=256)
    state = CheckpointStore(run_dir / "checkpoints").load_latest()
    learner_state = state["learner"]
    assert learner_state["numpy_adam"]["t"] > 0  # Adam moments of the numpy step were saved
    assert float(learner_state["numpy_adam"]["v"][0].abs().sum()) > 0
    assert "rng" in learner_state
    assert "torch" in state["rng"]
    agent = load_agent(run_dir)
    assert agent.version == state["version"]


def test_resume_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=r"config\.json does not exist"):
        resume(tmp_path / "missing")
    run_dir = tmp_path / "run"
    _train(run_dir, steps=128)
    ckpt = next((run_dir / "checkpoints").glob("ckpt-*.pt"))
    ckpt.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=ckpt.name):
        resume(run_dir)


def test_resume_refuses_changing_the_environment(run_dir: Path) -> None:
    from fleetmind.core.errors import ConfigError

    _train(run_dir, steps=128)
    with pytest.raises(ConfigError, match="env-id cannot change"):
        resume(run_dir, {"env_id": "Acrobot-v1"})


def test_public_api_train_load_act(run_dir: Path) -> None:
    fleetmind.train("CartPole-v1", steps=256, envs=4, run_dir=run_dir, algo_config=SMALL)
    agent = fleetmind.load(run_dir)
    action = agent.act(np.zeros(4, dtype=np.float32))
    assert action in (0, 1)
    result = fleetmind.evaluate(run_dir, episodes=3)
    assert result.episodes == 3
    assert len(result.returns) == 3


def test_continuous_actions_stay_inside_bounds(run_dir: Path) -> None:
    cfg = TrainConfig(env_id="Pendulum-v1", steps=256, envs=2, run_dir=run_dir)
    train(cfg, SMALL, progress=False)
    agent = fleetmind.load(run_dir)
    obs = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32) * 100
    actions = agent.act_batch(obs, deterministic=False)
    assert actions.shape == (64, 1)
    assert np.all(actions >= -2.0)
    assert np.all(actions <= 2.0)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_final_checkpoint_and_exits_cleanly(tmp_path: Path, sig: int) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetmind",
            "train",
            "CartPole-v1",
            "--steps",
            "100000000",
            "--envs",
            "2",
            "--run-dir",
            str(run_dir),
            "--log-interval-s",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    deadline = time.monotonic() + 120
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] is True
    saved = CheckpointStore(run_dir / "checkpoints").load_latest()
    assert saved["env_steps"] == summary["env_steps"] > 0
    assert json.loads(out.strip().splitlines()[-1])["interrupted"] is True
    assert torch.is_tensor(saved["rng"]["torch"])
