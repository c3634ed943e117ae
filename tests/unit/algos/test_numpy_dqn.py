"""The numpy DQN step computes what autograd + torch Adam compute, parameter for parameter."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fleetmind.algos.dqn.config import DQNConfig
from fleetmind.algos.dqn.learner import DQNLearner
from fleetmind.algos.dqn.numpy_step import NumpyDQNStep, numpy_unsupported_reason
from fleetmind.algos.dqn.replay import SampledBatch
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import ConfigError
from fleetmind.core.spaces import SpaceSpec

BOX5 = SpaceSpec("box", (5,), "float32")
THREE = SpaceSpec("discrete", (), "int64", n=3)
SMALL = DQNConfig(
    hidden_sizes=(32, 16),
    learning_starts=16,
    batch_size=16,
    train_frequency=8,
    gradient_steps=3,
    target_update_interval=8,
    buffer_size=1000,
    learning_rate=1e-2,
)
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _batch(rng: np.random.Generator, n: int, obs_space: SpaceSpec, per: bool) -> SampledBatch:
    if obs_space.kind == "discrete":
        obs = rng.integers(0, obs_space.n or 1, size=n).astype(np.float32)
        next_obs = rng.integers(0, obs_space.n or 1, size=n).astype(np.float32)
    else:
        obs = rng.normal(size=(n, 5)).astype(np.float32)
        next_obs = rng.normal(size=(n, 5)).astype(np.float32)
    weights = rng.uniform(0.2, 1.0, size=n) if per else np.ones(n)
    return SampledBatch(
        obs=obs,
        actions=rng.integers(0, 3, size=n),
        returns=rng.normal(0.0, 2.0, size=n).astype(np.float32),
        next_obs=next_obs,
        discounts=np.where(rng.random(n) < 0.2, 0.0, 0.97).astype(np.float32),
        weights=weights.astype(np.float32),
        indices=np.arange(n),
    )


def _pair(config: DQNConfig, obs_space: SpaceSpec = BOX5) -> tuple[DQNLearner, DQNLearner]:
    reference = DQNLearner(dataclasses.replace(config, backend="torch"), obs_space, THREE, 0)
    ours = DQNLearner(dataclasses.replace(config, backend="numpy"), obs_space, THREE, 0)
    assert (reference.backend, ours.backend) == ("torch", "numpy")
    return reference, ours


def _assert_same_parameters(reference: DQNLearner, ours: DQNLearner) -> None:
    for net in ("q_net", "target_net"):
        ref_params = dict(getattr(reference, net).named_parameters())
        for name, mine in getattr(ours, net).named_parameters():
            np.testing.assert_allclose(
                mine.detach().numpy(), ref_params[name].detach().numpy(), **TOL, err_msg=name
            )


@pytest.mark.parametrize(
    "change",
    [
        {"double": False},
        {"double": True},
        {"dueling": True},
        {"dueling": True, "double": False, "max_grad_norm": None},
        {"max_grad_norm": 0.05},
        {"max_grad_norm": None, "hidden_sizes": ()},
    ],
    ids=["vanilla", "double", "dueling-double", "dueling-noclip", "clip-active", "linear"],
)
@pytest.mark.parametrize("per", [False, True], ids=["uniform", "weighted"])
def test_five_steps_match_autograd_and_adam(change: dict[str, object], per: bool) -> None:
    reference, ours = _pair(dataclasses.replace(SMALL, **change))
    rng = np.random.default_rng(1)
    for _ in range(5):
        batch = _batch(rng, 16, BOX5, per)
        next_target = rng.normal(size=(16, 3)).astype(np.float32)
        ref_loss, ref_q, ref_td = reference._torch_step(batch, next_target)
        loss, q_mean, td = ours._step(batch, next_target)
        assert loss == pytest.approx(ref_loss, rel=1e-5, abs=1e-6)
        assert q_mean == pytest.approx(ref_q, rel=1e-5, abs=1e-6)
        np.testing.assert_allclose(td, ref_td, **TOL)
    _assert_same_parameters(reference, ours)
    ref_state = reference.optimizer.state_dict()["state"]
    for key, state in ours.optimizer.state_dict()["state"].items():
        assert float(state["step"]) == float(ref_state[key]["step"]) == 5.0
        for moment in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(state[moment], ref_state[key][moment], rtol=1e-4, atol=1e-7)


def test_one_hot_observations_match() -> None:
    obs_space = SpaceSpec("discrete", (), "int64", n=7)
    reference, ours = _pair(dataclasses.replace(SMALL, dueling=True), obs_space)
    rng = np.random.default_rng(2)
    for _ in range(4):
        batch = _batch(rng, 16, obs_space, per=False)
        next_target = rng.normal(size=(16, 3)).astype(np.float32)
        reference._torch_step(batch, next_target)
        ours._step(batch, next_target)
    _assert_same_parameters(reference, ours)


def _trajectories(seed: int, count: int, envs: int = 2, steps: int = 4) -> list[Trajectory]:
    rng = np.random.default_rng(seed)
    chunks = []
    for _ in range(count):
        ended = rng.random((steps, envs)) < 0.15
        terminated = ended & (rng.random((steps, envs)) < 0.5)
        valid = np.ones((steps, envs), dtype=bool)
        valid[1:] = ~ended[:-1]
        z = np.zeros((steps, envs), dtype=np.float32)
        chunks.append(
            Trajectory(
                obs=rng.normal(size=(steps, envs, 5)).astype(np.float32),
                actions=rng.integers(0, 3, size=(steps, envs)),
                log_probs=z,
                values=z,
                rewards=rng.normal(size=(steps, envs)).astype(np.float32),
                terminated=terminated,
                truncated=ended & ~terminated,
                valid=valid,
                next_values=z,
            )
        )
    return chunks


@pytest.mark.parametrize(
    "change",
    [
        {"double": False},
        {"n_step": 3},
        {"dueling": True, "n_step": 2, "target_tau": 0.3},
        {"prioritized": True, "n_step": 3, "priority_beta_steps": 50},
    ],
    ids=["vanilla", "double-nstep", "dueling-soft-target", "prioritized"],
)
def test_learners_on_both_backends_train_alike(change: dict[str, object]) -> None:
    reference, ours = _pair(dataclasses.replace(SMALL, **change))
    for chunk in _trajectories(3, 12):
        ref_metrics = reference.update(chunk)
        metrics = ours.update(chunk)
        assert metrics == pytest.approx(ref_metrics, rel=1e-4, abs=1e-5)
    assert ours.grad_steps == reference.grad_steps > 0
    _assert_same_parameters(reference, ours)
    if reference.buffer is not None and reference.buffer.priorities is not None:
        assert ours.buffer is not None
        np.testing.assert_allclose(ours.buffer.priorities, reference.buffer.priorities, **TOL)


def test_rollout_policy_reads_the_numpy_views() -> None:
    reference, ours = _pair(dataclasses.replace(SMALL, exploration_initial_eps=0.0))
    for chunk in _trajectories(4, 6):
        reference.update(chunk)
        ours.update(chunk)
    obs = np.random.default_rng(5).normal(size=(9, 5)).astype(np.float32)
    np.testing.assert_allclose(ours.q_values(obs), reference.q_values(obs), **TOL)
    step = ours.rollout_policy().step(obs)
    np.testing.assert_array_equal(step.actions, ours.q_values(obs).argmax(axis=1))
    served = ours.inference_policy().q_values(obs)  # serving stays on the torch module
    np.testing.assert_allclose(served, ours.q_values(obs), **TOL)


def test_checkpoint_of_numpy_backend_resumes_on_torch(tmp_path: Path) -> None:
    config = dataclasses.replace(SMALL, n_step=2)
    chunks = _trajectories(6, 10)
    numpy_learner = DQNLearner(dataclasses.replace(config, backend="numpy"), BOX5, THREE, 0)
    for chunk in chunks[:8]:
        numpy_learner.update(chunk)
    path = tmp_path / "state.pt"
    torch.save(numpy_learner.state_dict(), path)
    resumed = {
        backend: DQNLearner(dataclasses.replace(config, backend=backend), BOX5, THREE, 9)
        for backend in ("torch", "numpy")
    }
    for learner in resumed.values():
        # One load each: torch's optimizer adopts the loaded state tensors themselves.
        learner.load_state_dict(torch.load(path, weights_only=True))
        for chunk in chunks[8:]:
            learner.update(chunk)
    for chunk in chunks[8:]:
        numpy_learner.update(chunk)
    _assert_same_parameters(resumed["torch"], numpy_learner)
    _assert_same_parameters(resumed["numpy"], numpy_learner)
    assert resumed["numpy"].backend == "numpy"


def test_numpy_backend_refused_for_networks_it_cannot_run() -> None:
    learner = DQNLearner(dataclasses.replace(SMALL, backend="numpy"), BOX5, THREE, 0)
    learner.q_net = learner.q_net.double()
    assert "float32" in (numpy_unsupported_reason(learner.q_net) or "")
    with pytest.raises(ConfigError, match=r"dqn\.backend numpy cannot train"):
        learner._bind_numpy()
    auto = DQNLearner(SMALL, BOX5, THREE, 0)
    assert auto.backend == "numpy"
    auto.q_net = auto.q_net.double()
    auto._bind_numpy()
    assert auto.backend == "torch"  # auto falls back to autograd


def test_numpy_step_refuses_adam_variants_it_does_not_implement() -> None:
    learner = DQNLearner(SMALL, BOX5, THREE, 0)
    optimizer = torch.optim.Adam(learner.q_net.parameters(), weight_decay=0.1)
    with pytest.raises(ConfigError, match="plain Adam"):
        NumpyDQNStep(learner.q_net, optimizer, double=True, max_grad_norm=None)


TINY_FLAGS = ["--steps", "96", "--envs", "2", "--no-progress", "--dqn.hidden-sizes", "8",
              "--dqn.learning-starts", "32", "--dqn.train-frequency", "16",
              "--dqn.gradient-steps", "2", "--dqn.batch-size", "8"]  # fmt: skip


@pytest.mark.parametrize(
    ("env_id", "backend"),
    [("CartPole-v1", "numpy"), ("CartPole-v1", "torch"), ("FrozenLake-v1", "numpy")],
)
def test_backend_flag_on_the_command_line(
    env_id: str, backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleetmind.cli.main import main

    run = tmp_path / "run"
    argv = ["train", env_id, "--algo", "dqn", "--dqn.backend", backend, "--run-dir", str(run)]
    assert main([*argv, *TINY_FLAGS]) == 0
    assert json.loads(capsys.readouterr().out)["env_steps"] >= 96
    assert json.loads((run / "config.json").read_text())["dqn"]["backend"] == backend


def test_unknown_backend_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleetmind.cli.main import main

    argv = ["train", "CartPole-v1", "--algo", "dqn", "--dqn.backend", "jax"]
    assert main([*argv, "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "dqn.backend must be one of" in err
    assert "Traceback" not in err
