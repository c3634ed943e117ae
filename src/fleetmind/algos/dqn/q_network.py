"""Action-value networks and the greedy policy that reads them.

``QNetwork`` maps a batch of model inputs to one value per discrete action.
Discrete observations (toy-text envs) are one-hot encoded; box observations are
flattened. With ``dueling=True`` the head splits into a state value and action
advantages, ``Q = V + A - mean(A)`` (Wang et al., 2016).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from fleetmind.core.agent import Decision
from fleetmind.core.spaces import SpaceSpec


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers)


class QNetwork(nn.Module):
    """``Q(s, .)`` for a discrete action space."""

    def __init__(
        self, observation_space: SpaceSpec, num_actions: int, hidden: Sequence[int], dueling: bool
    ) -> None:
        super().__init__()
        self.one_hot = observation_space.n if observation_space.kind == "discrete" else None
        in_dim = observation_space.flat_dim
        self.body = _mlp([in_dim, *hidden])
        width = hidden[-1] if hidden else in_dim
        self.dueling = dueling
        self.advantage = nn.Linear(width, num_actions)
        self.value = nn.Linear(width, 1) if dueling else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, *obs]`` -> ``[B, num_actions]``."""
        if self.one_hot is not None:
            x = nn.functional.one_hot(obs.reshape(-1).long(), self.one_hot).float()
        else:
            x = obs.reshape(obs.shape[0], -1).float()
        features: torch.Tensor = self.body(x)
        advantage: torch.Tensor = self.advantage(features)
        if self.value is None:
            return advantage
        value: torch.Tensor = self.value(features)
        return value + advantage - advantage.mean(dim=1, keepdim=True)


class GreedyQPolicy:
    """A :class:`fleetmind.core.Policy` that picks ``argmax_a Q(s, a)``.

    Non-deterministic decisions explore with probability ``epsilon``. Outputs are
    ``q_values`` (``[num_actions]`` per row) and ``value`` (``max_a Q``).
    """

    def __init__(self, network: QNetwork, num_actions: int, epsilon: float, seed: int) -> None:
        self.network = network
        self.num_actions = num_actions
        self.epsilon = epsilon
        self.rng = np.random.default_rng(seed)

    @property
    def output_specs(self) -> dict[str, tuple[int, ...]]:
        """Per-row shapes of the outputs."""
        return {"q_values": (self.num_actions,), "value": ()}

    score_name = "q_value"
    """What :meth:`action_score` measures."""

    @property
    def differentiable(self) -> bool:
        """False for discrete observations: they are one-hot encoded, not continuous."""
        return self.network.one_hot is None

    def action_score(self, model_input: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``Q(s, a)`` of the chosen ``actions``, differentiable in ``model_input``."""
        q: torch.Tensor = self.network(model_input)
        return q.gather(1, actions.long().unsqueeze(1)).squeeze(1)

    def q_values(self, model_input: np.ndarray) -> np.ndarray:
        """``[B, num_actions]`` action values of ``model_input``."""
        with torch.inference_mode():
            q = self.network(torch.as_tensor(model_input))
        return np.asarray(q.numpy(), dtype=np.float32)

    def decide(self, model_input: np.ndarray, deterministic: bool = False) -> Decision:
        """Greedy actions, epsilon-greedy unless ``deterministic``."""
        q = self.q_values(model_input)
        actions = epsilon_greedy(q, 0.0 if deterministic else self.epsilon, self.rng)
        return Decision(actions=actions, outputs={"q_values": q, "value": q.max(axis=1)})


def epsilon_greedy(q: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Argmax of each row of ``q``, replaced by a uniform action with probability epsilon."""
    actions: np.ndarray = q.argmax(axis=1).astype(np.int64)
    if epsilon > 0.0:
        explore = rng.random(len(actions)) < epsilon
        actions = np.where(explore, rng.integers(0, q.shape[1], size=len(actions)), actions)
    return actions
