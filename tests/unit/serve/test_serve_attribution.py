"""Integrated-gradient attributions: completeness, what cannot be explained, and a
traffic signal whose reasons are known."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from fleetmind.algos.registry import get_algorithm
from fleetmind.core.agent import Agent
from fleetmind.core.normalizer import ObservationNormalizer, RunningMeanStd
from fleetmind.core.spaces import SpaceSpec
from fleetmind.envs.scenarios.traffic import make_traffic_env
from fleetmind.envs.scenarios.traffic.network import LANES, NUM_PHASES, green_masks
from fleetmind.serve.attribution import Attribution, Attributor, not_explainable_reason

QUEUE_AT = 6
"""First queue column of a traffic observation (after phase one-hot, time, may-switch)."""


def _box(dim: int) -> SpaceSpec:
    return SpaceSpec("box", (dim,), "float32", low=(-np.inf,) * dim, high=(np.inf,) * dim)


def _scrambled(net: torch.nn.Module, seed: int) -> None:
    """Weights large enough that decisions depend strongly on the input."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in net.parameters():
            if param.requires_grad and param.ndim > 0:
                param.normal_(0.0, 0.6)


def _ppo_agent(action: SpaceSpec, obs_dim: int = 6, *, normalise: bool = False) -> Agent:
    spec = get_algorithm("ppo")
    learner: Any = spec.build(spec.config_cls(), _box(obs_dim), action, 0)
    _scrambled(learner.net, 1)
    perceive: Any = None
    if normalise:
        rng = np.random.default_rng(3)
        stats = RunningMeanStd.from_data(rng.normal(2.0, 3.0, size=(500, obs_dim)))
        perceive = ObservationNormalizer(stats)
    agent = Agent(learner.inference_policy(), _box(obs_dim), action)
    if perceive is not None:
        agent.perceive = perceive
    return agent


def _complete(result: Attribution) -> None:
    gap = result.score - result.baseline_score
    total = result.attributions.reshape(len(gap), -1).sum(axis=1)
    np.testing.assert_array_less(np.abs(total - gap), 0.01 * np.abs(gap) + 1e-6)


def _rows(dim: int, count: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(1.0, 2.0, size=(count, dim)).astype(np.float32)


@pytest.mark.parametrize("normalise", [False, True])
def test_discrete_actor_critic_attributions_are_complete(normalise: bool) -> None:
    agent = _ppo_agent(SpaceSpec("discrete", (), "int64", n=3), normalise=normalise)
    attributor = Attributor.of(agent)
    assert isinstance(attributor, Attributor)
    assert attributor.score_name == "log_prob"
    result = attributor.attribute(_rows(6))
    assert result.attributions.shape == (16, 6)
    assert result.attributions.dtype == np.float32
    _complete(result)
    assert np.abs(result.score - result.baseline_score).max() > 0.1  # a real test


def test_the_pause_comes_before_every_policy_evaluation_and_changes_nothing() -> None:
    agent = _ppo_agent(SpaceSpec("discrete", (), "int64", n=3), normalise=True)
    attributor = Attributor.of(agent)
    assert isinstance(attributor, Attributor)
    evaluations: list[int] = []
    real = attributor.policy.action_score

    def counted(model_input: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        evaluations.append(len(pauses))
        return real(model_input, actions)

    pauses: list[int] = []
    attributor.policy.action_score = counted  # type: ignore[method-assign]
    paused = attributor.attribute(_rows(6), pause=lambda: pauses.append(1))
    # every evaluation of the policy came right after a pause of its own
    assert evaluations == list(range(1, len(pauses) + 1))
    assert len(pauses) >= 3  # the two scores and the integral at least
    plain = attributor.attribute(_rows(6))
    np.testing.assert_array_equal(paused.attributions, plain.attributions)


def test_gaussian_policy_attributions_are_complete() -> None:
    action = SpaceSpec("box", (2,), "float32", low=(-1.0, -1.0), high=(1.0, 1.0))
    result = Attributor.of(_ppo_agent(action))
    assert isinstance(result, Attributor)
    _complete(result.attribute(_rows(6)))


def test_q_network_attributions_are_complete() -> None:
    spec = get_algorithm("dqn")
    learner: Any = spec.build(
        spec.config_cls(), _box(5), SpaceSpec("discrete", (), "int64", n=3), 0
    )
    _scrambled(learner.inference_policy().network, 2)
    agent = Agent(learner.inference_policy(), _box(5), SpaceSpec("discrete", (), "int64", n=3))
    attributor = Attributor.of(agent)
    assert isinstance(attributor, Attributor)
    assert attributor.score_name == "q_value"
    _complete(attributor.attribute(_rows(5)))


def test_baseline_is_the_normalisers_mean() -> None:
    """At the normaliser's mean every attribution is zero: it is the baseline."""
    agent = _ppo_agent(SpaceSpec("discrete", (), "int64", n=3), normalise=True)
    perceive = agent.perceive
    assert isinstance(perceive, ObservationNormalizer)
    mean = perceive.stats.mean.astype(np.float32)[None]
    attributor = Attributor.of(agent)
    assert isinstance(attributor, Attributor)
    np.testing.assert_allclose(attributor.attribute(mean).attributions, 0.0, atol=1e-7)


def test_tabular_and_bandit_policies_cannot_be_explained() -> None:
    class Lookup:
        output_specs: ClassVar[dict[str, tuple[int, ...]]] = {}

        def decide(self, model_input: np.ndarray, deterministic: bool = False) -> Any:
            raise NotImplementedError

    agent = Agent(
        Lookup(), SpaceSpec("discrete", (), "int64", n=4), SpaceSpec("discrete", (), "int64", n=2)
    )
    reason = not_explainable_reason(agent)
    assert reason is not None
    assert "not differentiable" in reason
    assert isinstance(Attributor.of(agent), str)


def test_q_network_over_discrete_observations_cannot_be_explained() -> None:
    spec = get_algorithm("dqn")
    states = SpaceSpec("discrete", (), "int64", n=16)
    learner: Any = spec.build(spec.config_cls(), states, SpaceSpec("discrete", (), "int64", n=4), 0)
    agent = Agent(learner.inference_policy(), states, SpaceSpec("discrete", (), "int64", n=4))
    reason = not_explainable_reason(agent)
    assert reason is not None
    assert "one-hot" in reason


# --- traffic: a signal that serves the longest queue -----------------------------------


def _longest_queue_agent(obs_dim: int) -> Agent:
    """A PPO network set by hand to serve the phase with the most queued vehicles:
    hidden unit p sums the queues on phase p's green lanes, logit p reads unit p."""
    spec = get_algorithm("ppo")
    config = spec.config_cls(hidden_sizes=(NUM_PHASES,))
    discrete = SpaceSpec("discrete", (), "int64", n=NUM_PHASES)
    learner: Any = spec.build(config, _box(obs_dim), discrete, 0)
    first, last = learner.net.actor[0], learner.net.actor[-1]
    with torch.no_grad():
        first.weight.zero_()
        first.bias.zero_()
        first.weight[:, QUEUE_AT : QUEUE_AT + LANES] = torch.from_numpy(
            green_masks().astype(np.float32)
        )
        last.weight.copy_(6.0 * torch.eye(NUM_PHASES))
        last.bias.zero_()
    return Agent(learner.inference_policy(), _box(obs_dim), discrete)


def _switching_decisions(agent: Agent, steps: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Observations (and chosen phases) of a signal driven by ``agent`` where it switches."""
    env = make_traffic_env("traffic-single", {})
    obs, _ = env.reset(seed=0)
    name = env.possible_agents[0]
    seen, chosen = [], []
    for _ in range(steps):
        row = obs[name]
        action = int(agent.act(row))
        if row[5] > 0 and action != int(np.argmax(row[:NUM_PHASES])):
            seen.append(row)
            chosen.append(action)
        obs, *_ = env.step({name: action})
    return np.asarray(seen, dtype=np.float32), np.asarray(chosen)


def test_traffic_switch_is_explained_by_the_queue_that_gets_green() -> None:
    """When the signal switches, the feature with the largest attribution is a queue
    on a lane that the new phase turns green, in most decisions. Attributing another
    action, the wrong sign, a shuffled layout or a baseline at the input all fail this."""
    agent = _longest_queue_agent(
        make_traffic_env("traffic-single", {}).observation_space("tl_0_0").shape[0]
    )
    rows, chosen = _switching_decisions(agent)
    assert len(rows) >= 10, "the signal should switch several times"
    attributor = Attributor.of(agent)
    assert isinstance(attributor, Attributor)
    result = attributor.attribute(rows)
    _complete(result)
    top = result.attributions.argmax(axis=1)
    green = green_masks()
    hits = [
        QUEUE_AT <= f < QUEUE_AT + LANES and bool(green[a, f - QUEUE_AT])
        for f, a in zip(top, chosen, strict=True)
    ]
    assert np.mean(hits) >= 0.8, f"{np.mean(hits):.2f} of {len(hits)} switches"
    # and no feature outside the queues matters to this signal
    outside = np.delete(result.attributions, np.s_[QUEUE_AT : QUEUE_AT + LANES], axis=1)
    np.testing.assert_allclose(outside, 0.0, atol=1e-6)
