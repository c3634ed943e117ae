"""The numpy PPO step computes what autograd + Adam compute."""

import copy

import numpy as np
import pytest
import torch

from fleetmind.algos.actor_critic.network import ActorCritic
from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.algos.ppo.learner import PPOLearner, ppo_loss
from fleetmind.algos.ppo.numpy_step import NumpyPPOStep
from fleetmind.core.spaces import SpaceSpec

DISCRETE = SpaceSpec("discrete", (), "int64", n=3)
BOX = SpaceSpec("box", (2,), "float32", low=(-1.0, -1.0), high=(1.0, 1.0))


def _batch(space: SpaceSpec, n: int = 64) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, 5)).astype(np.float32)
    if space.kind == "discrete":
        actions = rng.integers(0, 3, size=n)
    else:
        actions = rng.normal(size=(n, 2)).astype(np.float32)
    old_logp = rng.normal(-1.0, 0.3, size=n).astype(np.float32)
    adv = rng.normal(size=n).astype(np.float32)
    ret = rng.normal(size=n).astype(np.float32)
    old_v = rng.normal(size=n).astype(np.float32)
    return obs, actions, old_logp, adv, ret, old_v


@pytest.mark.parametrize("space", [DISCRETE, BOX], ids=["discrete", "gaussian"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("clip_value", [False, True])
@pytest.mark.parametrize("decisions", [False, True], ids=["all-steps", "decision-steps"])
def test_three_steps_match_autograd_and_adam(
    space: SpaceSpec, activation: str, clip_value: bool, decisions: bool
) -> None:
    torch.manual_seed(0)
    cfg = PPOConfig(activation=activation, clip_value=clip_value, ent_coef=0.01, clip_coef=0.1,
                    max_grad_norm=0.3, hidden_sizes=(16, 8))  # fmt: skip
    reference = ActorCritic(5, space, cfg.hidden_sizes, activation, init_log_std=-0.3)
    net = copy.deepcopy(reference)
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-2, eps=1e-5)
    numpy_step = NumpyPPOStep(net, activation, eps=1e-5)
    batch: list[np.ndarray] = list(_batch(space))
    if decisions:
        batch.append(np.random.default_rng(1).random(len(batch[0])) < 0.4)
    tensors = [torch.from_numpy(np.asarray(b)) for b in batch]
    for _ in range(3):
        loss, stats = ppo_loss(reference, *tensors[:6], cfg, *tensors[6:])
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(reference.parameters(), cfg.max_grad_norm)
        optimizer.step()
        ours = numpy_step.step(batch, cfg, lr=1e-2)
        assert ours["policy_loss"] == pytest.approx(float(stats["policy_loss"]), rel=1e-4, abs=1e-6)
        assert ours["value_loss"] == pytest.approx(float(stats["value_loss"]), rel=1e-4, abs=1e-6)
    for (name, ref), mine in zip(reference.named_parameters(), net.parameters(), strict=True):
        if not ref.requires_grad:
            continue
        np.testing.assert_allclose(
            mine.detach().numpy(), ref.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=name
        )


def test_learner_uses_numpy_path_and_checkpoints_its_moments() -> None:
    obs_space = SpaceSpec("box", (5,), "float32", low=(-1.0,) * 5, high=(1.0,) * 5)
    learner = PPOLearner(PPOConfig(), obs_space, DISCRETE, seed=0)
    assert learner._numpy_step() is not None
    torch_learner = PPOLearner(PPOConfig(backend="torch"), obs_space, DISCRETE, seed=0)
    assert torch_learner._numpy_step() is None
    state = learner.state_dict()
    assert "numpy_adam" in state
    restored = PPOLearner(PPOConfig(), obs_space, DISCRETE, seed=1)
    restored.load_state_dict(state)
    assert restored._numpy is not None
    assert restored._numpy.adam.t == learner._numpy_step().adam.t  # type: ignore[union-attr]


def test_numpy_backend_refused_where_it_does_not_apply() -> None:
    from fleetmind.core.errors import ConfigError

    obs_space = SpaceSpec("box", (5,), "float32", low=(-1.0,) * 5, high=(1.0,) * 5)
    learner = PPOLearner(PPOConfig(backend="numpy", activation="elu"), obs_space, DISCRETE, 0)
    with pytest.raises(ConfigError, match="backend numpy needs"):
        learner._numpy_step()
    auto = PPOLearner(PPOConfig(activation="elu"), obs_space, DISCRETE, 0)
    assert auto._numpy_step() is None  # auto falls back to autograd


def test_unknown_backend_on_the_command_line(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleetmind.cli.main import main

    code = main(["train", "CartPole-v1", "--ppo.backend", "jax", "--run-dir", f"{tmp_path}/r"])
    assert code == 2
    assert "ppo.backend must be one of" in capsys.readouterr().err
