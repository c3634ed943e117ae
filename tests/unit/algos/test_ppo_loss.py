import math

import numpy as np
import pytest
import torch

from fleetmind.algos.actor_critic.network import ActorCritic
from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.algos.ppo.learner import PPOLearner, ppo_loss
from fleetmind.core.batch import Trajectory
from fleetmind.core.spaces import SpaceSpec

DISCRETE = SpaceSpec("discrete", (), "int64", n=2)
OBS = SpaceSpec("box", (3,), "float32", low=(-1.0,) * 3, high=(1.0,) * 3)


def _uniform_net() -> ActorCritic:
    net = ActorCritic(3, DISCRETE, hidden=(4,))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    return net  # uniform policy (log p = log 0.5), value 0


def test_clipped_objective_hand_computed() -> None:
    net = _uniform_net()
    cfg = PPOConfig(clip_coef=0.2, norm_adv=False, ent_coef=0.0, vf_coef=0.5)
    obs = torch.zeros(2, 3)
    actions = torch.tensor([0, 1])
    # ratio = 0.5 / old_p: old_p = 0.25 -> ratio 2 (clipped to 1.2); old_p = 1.0 -> ratio 0.5
    old_logp = torch.log(torch.tensor([0.25, 1.0]))
    adv = torch.tensor([1.0, -1.0])
    returns = torch.tensor([1.0, 3.0])
    loss, stats = ppo_loss(net, obs, actions, old_logp, adv, returns, torch.zeros(2), cfg)
    # sample 0: max(-1*2, -1*1.2) = -1.2; sample 1: max(0.5, 0.8) = 0.8 -> mean -0.2
    assert float(stats["policy_loss"]) == pytest.approx(-0.2)
    assert float(stats["value_loss"]) == pytest.approx(0.5 * (1 + 9) / 2)
    assert float(stats["entropy"]) == pytest.approx(math.log(2))
    assert float(stats["clip_fraction"]) == pytest.approx(1.0)
    assert float(loss.detach()) == pytest.approx(-0.2 + 0.5 * 2.5)


def test_value_clipping_limits_value_change() -> None:
    net = _uniform_net()
    cfg = PPOConfig(clip_coef=0.2, norm_adv=False, clip_value=True)
    # value 0 now, old value 1 -> clipped value 0.8; target 1: max(1, 0.04) -> 1
    _, stats = ppo_loss(
        net,
        torch.zeros(1, 3),
        torch.tensor([0]),
        torch.log(torch.tensor([0.5])),
        torch.tensor([0.0]),
        torch.tensor([1.0]),
        torch.tensor([1.0]),
        cfg,
    )
    assert float(stats["value_loss"]) == pytest.approx(0.5)


def test_numpy_rollout_policy_matches_torch_evaluation() -> None:
    learner = PPOLearner(PPOConfig(), OBS, DISCRETE, seed=0)
    policy = learner.rollout_policy()
    x = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    out = policy.step(x)
    logp, _, values = learner.net.evaluate(torch.from_numpy(x), torch.from_numpy(out.actions))
    np.testing.assert_allclose(out.log_probs, logp.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.values, values.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_continuous_rollout_policy_matches_torch_evaluation() -> None:
    box = SpaceSpec("box", (2,), "float32", low=(-2.0, -2.0), high=(2.0, 2.0))
    learner = PPOLearner(PPOConfig(init_log_std=-0.5), OBS, box, seed=0)
    x = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    out = learner.rollout_policy().step(x)
    logp, entropy, _ = learner.net.evaluate(torch.from_numpy(x), torch.from_numpy(out.actions))
    np.testing.assert_allclose(out.log_probs, logp.detach().numpy(), rtol=1e-4, atol=1e-4)
    assert entropy.shape == (5,)


def _trajectory(steps: int = 8, envs: int = 4) -> Trajectory:
    rng = np.random.default_rng(0)
    shape = (steps, envs)
    return Trajectory(
        obs=rng.normal(size=(*shape, 3)).astype(np.float32),
        actions=rng.integers(0, 2, size=shape),
        log_probs=np.full(shape, math.log(0.5), dtype=np.float32),
        values=np.zeros(shape, dtype=np.float32),
        rewards=np.ones(shape, dtype=np.float32),
        terminated=np.zeros(shape, dtype=bool),
        truncated=np.zeros(shape, dtype=bool),
        valid=rng.random(shape) > 0.2,
        next_values=np.zeros(shape, dtype=np.float32),
    )


def test_update_changes_parameters_and_bumps_version() -> None:
    learner = PPOLearner(PPOConfig(minibatch_size=8, update_epochs=2), OBS, DISCRETE, seed=0)
    before = [p.detach().clone() for p in learner.net.parameters()]
    metrics = learner.update(_trajectory())
    assert learner.version == 1
    assert learner.env_steps == 32
    assert all(math.isfinite(v) for k, v in metrics.items() if k != "explained_variance")
    changed = [not torch.equal(b, p) for b, p in zip(before, learner.net.parameters(), strict=True)]
    assert any(changed)


def test_learning_rate_anneals_to_zero_over_budget() -> None:
    learner = PPOLearner(PPOConfig(learning_rate=1e-3), OBS, DISCRETE, seed=0)
    learner.total_env_steps = 64
    first = learner.update(_trajectory())["learning_rate"]
    second = learner.update(_trajectory())["learning_rate"]
    assert first == pytest.approx(1e-3)
    assert second == pytest.approx(0.5e-3)


def _actor_grads(net: ActorCritic, loss: torch.Tensor) -> list[torch.Tensor]:
    net.zero_grad()
    loss.backward()  # type: ignore[no-untyped-call]
    return [p.grad.clone() for p in net.actor.parameters() if p.grad is not None]


def test_steps_without_decision_give_no_policy_gradient() -> None:
    torch.manual_seed(0)
    net = ActorCritic(3, DISCRETE, hidden=(8,))
    cfg = PPOConfig(ent_coef=0.05)
    n = 16
    obs, returns, old_values = torch.randn(n, 3), torch.randn(n), torch.randn(n)
    actions = torch.randint(0, 2, (n,))
    old_logp, adv = torch.full((n,), math.log(0.5)), torch.randn(n)
    decision = torch.arange(n) % 3 == 0
    loss, stats = ppo_loss(net, obs, actions, old_logp, adv, returns, old_values, cfg, decision)
    grads = _actor_grads(net, loss)
    # Other actions and advantages on the locked rows change nothing in the policy.
    locked = ~decision
    actions2, adv2 = actions.clone(), adv.clone()
    actions2[locked], adv2[locked] = 1 - actions[locked], adv[locked] * 10 + 3
    loss2, _ = ppo_loss(net, obs, actions2, old_logp, adv2, returns, old_values, cfg, decision)
    for a, b in zip(grads, _actor_grads(net, loss2), strict=True):
        torch.testing.assert_close(a, b)
    # The policy terms equal the unmasked objective on the decision rows alone.
    rows = [t[decision] for t in (obs, actions, old_logp, adv, returns, old_values)]
    _, alone = ppo_loss(net, *rows, cfg)
    for key in ("policy_loss", "entropy", "approx_kl", "clip_fraction"):
        assert float(stats[key]) == pytest.approx(float(alone[key]), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_update_without_decisions_trains_only_the_critic(backend: str) -> None:
    cfg = PPOConfig(minibatch_size=8, update_epochs=2, ent_coef=0.01, backend=backend)  # type: ignore[arg-type]
    learner = PPOLearner(cfg, OBS, DISCRETE, seed=0)
    trajectory = _trajectory()
    trajectory.decision = np.zeros_like(trajectory.valid)
    actor = [p.detach().clone() for p in learner.net.actor.parameters()]
    critic = [p.detach().clone() for p in learner.net.critic.parameters()]
    metrics = learner.update(trajectory)
    assert metrics["entropy"] == 0.0
    for before, after in zip(actor, learner.net.actor.parameters(), strict=True):
        torch.testing.assert_close(before, after.detach())
    moved = [
        not torch.equal(b, p) for b, p in zip(critic, learner.net.critic.parameters(), strict=True)
    ]
    assert any(moved)
