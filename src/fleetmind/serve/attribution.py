"""Integrated-gradient attributions of an agent's decisions (Captum).

For each observation row, how much each input feature pushed the chosen action:
the integrated gradients (Sundararajan et al., 2017) of the chosen action's
**score** (its log-probability for actor-critic policies, its Q-value for
Q-networks), along the straight line from a baseline to the observation::

    attributor = Attributor.of(agent)            # None reason -> explainable
    result = attributor.attribute(observations)  # [B, *obs_shape] FP32
    result.attributions.sum(axis=1) ~= result.score - result.baseline_score

**The path runs in model-input space**, after the agent's perception
(normalisation, agent-id columns): the model input ``z`` of the observation, and
the baseline ``z0`` that is zero on the observation's columns (the normaliser's
mean for an agent trained with observation normalisation, the zero observation
otherwise) and equal to ``z`` on any columns perception appends (a team agent's
one-hot id). Perception is element-wise (standardise and clip) and keeps the
observation's columns first, so the attribution of model-input column ``i`` is
that of observation feature ``i``; appended columns get none (they do not move).

**Completeness**: the attributions of a row sum to ``score(z) - score(z0)``.
Integrated gradients meet it up to the error of the integral's quadrature; when
a row misses it by more than :data:`COMPLETENESS_TOLERANCE` (relative), the
integral is computed again with more steps (up to :data:`MAX_STEPS`).

Tabular and bandit policies (and Q-networks over discrete, one-hot observations)
have no gradients: :meth:`Attributor.of` says why instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import torch

from fleetmind.core.agent import Agent

DEFAULT_STEPS = 64
"""Gauss-Legendre points of the path integral at first."""
MAX_STEPS = 1024
"""Most points tried before the attributions are returned as they are."""
COMPLETENESS_TOLERANCE = 0.005
"""Relative completeness error below which more steps are not tried."""


@runtime_checkable
class ScoredPolicy(Protocol):
    """A policy whose decisions have a differentiable score."""

    score_name: str
    """What the score is (``log_prob``, ``q_value``)."""

    @property
    def differentiable(self) -> bool:
        """False when this instance cannot be differentiated after all."""
        ...

    def action_score(self, model_input: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``[B]`` score of ``actions`` (policy space) for ``model_input``."""
        ...

    def decide(self, model_input: np.ndarray, deterministic: bool = False) -> Any:
        """The policy's decision (its ``actions`` are what gets explained)."""
        ...


@dataclass(frozen=True)
class Attribution:
    """Attributions of a batch of decisions, with the scores they split up."""

    attributions: np.ndarray
    """``[B, *obs_shape]`` FP32: each feature's share of ``score - baseline_score``."""
    score: np.ndarray
    """``[B]`` score of the chosen action at the observation."""
    baseline_score: np.ndarray
    """``[B]`` score of the same action at the baseline."""
    steps: int
    """Integration points used."""


def not_explainable_reason(agent: Agent) -> str | None:
    """None when ``agent``'s decisions can be attributed; otherwise why not."""
    policy = agent.policy
    kind = type(policy).__name__
    instead = getattr(policy, "not_explainable", None)
    if isinstance(instead, str):
        return instead
    if not isinstance(policy, ScoredPolicy):
        return (
            f"its policy ({kind}) is not differentiable: explanations need a neural "
            "policy (PPO, IMPALA, DQN, MAPPO, IPPO), not a tabular or bandit one"
        )
    if not policy.differentiable:
        return f"its policy ({kind}) reads discrete (one-hot) observations, which have no gradient"
    if agent.observation_space.kind != "box":
        return f"its observations are {agent.observation_space.kind}, not continuous (box)"
    return None


class Attributor:
    """Integrated gradients of one agent's chosen actions (blocking; call off the loop)."""

    def __init__(self, agent: Agent, policy: ScoredPolicy) -> None:
        self.agent = agent
        self.policy = policy
        self.obs_shape = tuple(agent.observation_space.shape)
        self.obs_dim = math.prod(self.obs_shape)

    @classmethod
    def of(cls, agent: Agent) -> Attributor | str:
        """The attributor of ``agent``, or the reason it has none."""
        reason = not_explainable_reason(agent)
        if reason is not None:
            return reason
        return cls(agent, cast(ScoredPolicy, agent.policy))

    @property
    def score_name(self) -> str:
        """What the attributions split up."""
        return self.policy.score_name

    def attribute(
        self, observations: np.ndarray, pause: Callable[[], None] | None = None
    ) -> Attribution:
        """Attributions of the deterministic decisions for ``[B, *obs_shape]`` rows.

        ``pause`` is called before every evaluation of the policy (five per integral,
        the first right at the start): the explainer process gives the CPU up there
        to any serving work that waits (``os.sched_yield``).
        """
        from captum.attr import IntegratedGradients

        policy_score = self.policy.action_score

        def action_score(model_input: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
            if pause is not None:
                pause()
            return policy_score(model_input, actions)

        rows = np.array(observations, dtype=np.float32)  # a writable copy
        z = np.ascontiguousarray(self.agent.perceive(rows), dtype=np.float32)
        actions = np.asarray(self.policy.decide(z, deterministic=True).actions)
        flat = z.reshape(len(z), -1)
        baseline = flat.copy()
        baseline[:, : self.obs_dim] = 0.0
        inputs = torch.from_numpy(z)
        base = torch.from_numpy(baseline.reshape(z.shape))
        chosen = torch.from_numpy(actions)
        ig = IntegratedGradients(action_score)
        with torch.no_grad():
            score = action_score(inputs, chosen).numpy()
            base_score = action_score(base, chosen).numpy()
        gap = np.abs(score - base_score)
        steps = DEFAULT_STEPS
        while True:
            with torch.enable_grad():
                attr, delta = ig.attribute(
                    inputs,
                    baselines=base,
                    additional_forward_args=(chosen,),
                    n_steps=steps,
                    return_convergence_delta=True,
                )
            error = np.abs(delta.detach().numpy())
            if steps >= MAX_STEPS or np.all(error <= COMPLETENESS_TOLERANCE * gap + 1e-7):
                break
            steps *= 4
        values = attr.detach().numpy().reshape(len(z), -1)[:, : self.obs_dim]
        return Attribution(
            values.reshape(len(z), *self.obs_shape).astype(np.float32),
            score.astype(np.float32),
            base_score.astype(np.float32),
            steps,
        )
