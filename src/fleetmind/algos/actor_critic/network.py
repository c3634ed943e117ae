"""An actor-critic network for discrete and continuous actions, and its policies.

Discrete actions use a categorical distribution over logits. Continuous actions use
a diagonal Gaussian with a state-independent log standard deviation; for a bounded
box the policy acts in ``[-1, 1]`` and :func:`box_actuator` maps that affinely onto
the bounds and clips, so every action sent to the environment is inside its space.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from fleetmind.algos.actor_critic.frozen import FrozenActorCritic
from fleetmind.core.agent import Decision, Perceiver
from fleetmind.core.errors import ConfigError
from fleetmind.core.learning import StepOutput
from fleetmind.core.spaces import SpaceSpec
from fleetmind.nn.mlp import mlp
from fleetmind.nn.numpy_actor_critic import NumpyActorCritic
from fleetmind.nn.numpy_mlp import linear_views

LOG_2PI = math.log(2.0 * math.pi)


def check_supported_action(space: SpaceSpec) -> str | None:
    """None for a discrete or box action space; a message otherwise."""
    if space.kind in ("discrete", "box"):
        return None
    return f"{space.kind} action spaces are not supported yet; use a discrete or box action space"


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs over a flat observation vector."""

    def __init__(
        self,
        obs_dim: int,
        action_space: SpaceSpec,
        hidden: Sequence[int] = (64, 64),
        activation: str = "tanh",
        init_log_std: float = 0.0,
    ) -> None:
        super().__init__()
        problem = check_supported_action(action_space)
        if problem:
            raise ConfigError(problem)
        self.discrete = action_space.kind == "discrete"
        self.activation = activation
        out_dim = int(action_space.n or 0) if self.discrete else action_space.flat_dim
        self.action_shape = action_space.shape
        self.actor = mlp(obs_dim, hidden, out_dim, activation, out_gain=0.01)
        self.critic = mlp(obs_dim, hidden, 1, activation, out_gain=1.0)
        self.log_std = nn.Parameter(
            torch.full((out_dim,), init_log_std), requires_grad=not self.discrete
        )

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """Critic values ``[B]``."""
        value: torch.Tensor = self.critic(obs).squeeze(-1)
        return value

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(actions, log_probs, values)`` sampled for ``obs`` ``[B, D]``."""
        head = self.actor(obs)
        if self.discrete:
            logp_all = torch.log_softmax(head, dim=-1)
            gumbel = -torch.log(-torch.log(torch.rand_like(head).clamp_(1e-20, 1.0)))
            actions = torch.argmax(head + gumbel, dim=-1)
            logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        else:
            std = self.log_std.exp()
            actions = head + std * torch.randn_like(head)
            logp = self._gaussian_logp(head, actions)
        return actions, logp, self.value(obs)

    def _gaussian_logp(self, mean: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - mean) * torch.exp(-self.log_std)
        return (-0.5 * z.pow(2) - self.log_std - 0.5 * LOG_2PI).sum(-1)

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log_probs, entropy, values)`` of given ``actions`` under the current policy."""
        head = self.actor(obs)
        if self.discrete:
            logp_all = torch.log_softmax(head, dim=-1)
            logp = logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
            entropy = -(logp_all.exp() * logp_all).sum(-1)
        else:
            logp = self._gaussian_logp(head, actions)
            entropy = (self.log_std + 0.5 * (1.0 + LOG_2PI)).sum().expand(head.shape[0])
        return logp, entropy, self.value(obs)

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``[B]`` log-probabilities of ``actions`` (policy space), differentiable in ``obs``."""
        head = self.actor(obs)
        if self.discrete:
            logp_all = torch.log_softmax(head, dim=-1)
            return logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        return self._gaussian_logp(head, actions)

    def outputs(
        self, obs: torch.Tensor, deterministic: bool
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Actions plus the named outputs a served model returns."""
        head = self.actor(obs)
        value = self.value(obs)
        if self.discrete:
            probs = torch.softmax(head, dim=-1)
            actions = probs.argmax(-1) if deterministic else torch.multinomial(probs, 1)[:, 0]
            return actions, {"action_probs": probs, "value": value}
        log_std = self.log_std.expand_as(head)
        actions = head if deterministic else head + log_std.exp() * torch.randn_like(head)
        return actions, {"action_mean": head, "action_log_std": log_std, "value": value}

    def numpy_view(self) -> NumpyActorCritic:
        """The networks as numpy views of the parameters (they follow in-place updates)."""
        return NumpyActorCritic(
            linear_views(self.actor),
            linear_views(self.critic),
            self.activation,
            self.log_std.detach().numpy(),
            self.discrete,
        )


class ActorCriticRolloutPolicy:
    """The behaviour policy: samples with the network's current parameters (in numpy)."""

    def __init__(self, net: ActorCritic, rng: np.random.Generator) -> None:
        self.net = net
        self.rng = rng
        self._np = net.numpy_view()
        self._arange = np.arange(0)

    def step(self, model_input: np.ndarray) -> StepOutput:
        """Sample actions for ``[E, D]`` inputs."""
        x = np.asarray(model_input, dtype=np.float32)
        head = self._np.head(x)
        values = self._np.value(x)
        if self.net.discrete:
            shifted = head - head.max(axis=1, keepdims=True)
            logp_all = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            gumbel = -np.log(-np.log(self.rng.uniform(1e-20, 1.0, size=head.shape)))
            actions = np.argmax(logp_all + gumbel, axis=1)
            logp = logp_all[self._rows(len(actions)), actions]
        else:
            log_std = self._np.log_std
            noise = self.rng.standard_normal(head.shape).astype(np.float32)
            actions = head + np.exp(log_std) * noise
            logp = (-0.5 * noise**2 - log_std - 0.5 * LOG_2PI).sum(axis=1)
        return StepOutput(actions, logp.astype(np.float32), values.astype(np.float32))

    def _rows(self, n: int) -> np.ndarray:
        """``arange(n)``, made once per row count (it indexes each row's chosen action)."""
        if len(self._arange) != n:
            self._arange = np.arange(n)
        return self._arange


class ActorCriticPolicy:
    """A :class:`fleetmind.core.Policy` for evaluation and serving.

    Deterministic decisions (what serving and evaluation ask for) run in numpy,
    where a small network answers in a few microseconds instead of torch's
    hundreds; sampling stays with torch and its generator.
    """

    def __init__(self, net: ActorCritic, action_space: SpaceSpec) -> None:
        self.net = net
        self.action_space = action_space
        self._np = net.numpy_view()

    @property
    def output_specs(self) -> dict[str, tuple[int, ...]]:
        """Per-row shapes of the outputs."""
        if self.net.discrete:
            return {"action_probs": (int(self.action_space.n or 0),), "value": ()}
        dim = self.action_space.flat_dim
        return {"action_mean": (dim,), "action_log_std": (dim,), "value": ()}

    differentiable = True
    """Decisions can be explained by gradients (:meth:`action_score`)."""
    score_name = "log_prob"
    """What :meth:`action_score` measures."""

    def action_score(self, model_input: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Log-probability of the chosen ``actions``, differentiable in ``model_input``."""
        return self.net.log_prob(model_input, actions)

    def decide(self, model_input: np.ndarray, deterministic: bool = False) -> Decision:
        """Actions (policy space) and outputs for ``[B, D]`` inputs."""
        if deterministic:
            return self._decide_numpy(np.asarray(model_input, dtype=np.float32))
        with torch.inference_mode():
            obs = torch.from_numpy(np.ascontiguousarray(model_input, dtype=np.float32))
            actions, outputs = self.net.outputs(obs, deterministic)
            return Decision(
                actions.detach().numpy(), {k: v.detach().numpy() for k, v in outputs.items()}
            )

    def _decide_numpy(self, x: np.ndarray) -> Decision:
        head = self._np.head(x)
        value = self._np.value(x)
        if self.net.discrete:
            exp = np.exp(head - head.max(axis=1, keepdims=True))
            probs = exp / exp.sum(axis=1, keepdims=True)
            return Decision(probs.argmax(axis=1), {"action_probs": probs, "value": value})
        log_std = np.broadcast_to(self._np.log_std, head.shape).copy()
        return Decision(head, {"action_mean": head, "action_log_std": log_std, "value": value})

    def frozen_decider(self, perceive: Perceiver) -> Callable[[np.ndarray], Decision]:
        """Deterministic decisions from copies of today's parameters, ``perceive`` included
        (for a served model: faster, and blind to later training)."""
        return FrozenActorCritic(self.net.numpy_view(), perceive)


def actor_critic_adam(net: nn.Module, learning_rate: float) -> torch.optim.Adam:
    """The optimizer of an actor-critic learner (PPO's eps of 1e-5, fused over tensors)."""
    return torch.optim.Adam(net.parameters(), lr=learning_rate, eps=1e-5, foreach=True)


class ActorCriticLearnerBase:
    """State handling shared by learners that own one :class:`ActorCritic`.

    Subclasses set ``net``, ``rng``, ``action_space``, ``config`` (with
    ``activation`` and ``learning_rate`` fields), ``version`` and ``env_steps``.
    """

    net: ActorCritic
    _optimizer: torch.optim.Optimizer | None = None
    _optimizer_state: dict[str, Any] | None = None
    rng: np.random.Generator
    action_space: SpaceSpec
    config: Any
    version: int
    env_steps: int
    total_env_steps: int | None

    def _init_actor_critic(
        self, config: Any, observation_space: SpaceSpec, action_space: SpaceSpec, seed: int
    ) -> None:
        """Validate ``config`` and build the network, the sampling RNG and counters
        (Adam comes with the first use of :attr:`optimizer`).

        ``config`` needs ``validate()``, ``hidden_sizes``, ``activation``,
        ``init_log_std`` and ``learning_rate``.
        """
        config.validate()
        torch.manual_seed(seed)
        self.config = config
        self.action_space = action_space
        self.net = ActorCritic(
            observation_space.flat_dim,
            action_space,
            config.hidden_sizes,
            config.activation,
            config.init_log_std,
        )
        self._optimizer = None
        self._optimizer_state = None
        self.rng = np.random.default_rng(seed)
        self.version = 0
        self.env_steps = 0
        self.total_env_steps = None

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """Adam over ``net``, built on first use.

        Building a torch optimizer imports torch's compiler stack (about a second and a
        half); an actor, an evaluation or a server that only runs the policy never does.
        """
        if self._optimizer is None:
            self._optimizer = actor_critic_adam(self.net, self.config.learning_rate)
            self._apply_optimizer_state()  # restored before it was built
        return self._optimizer

    def _apply_optimizer_state(self) -> None:
        """Load restored optimizer state into the built optimizer (once)."""
        if self._optimizer is not None and self._optimizer_state is not None:
            self._optimizer.load_state_dict(self._optimizer_state)
            self._optimizer_state = None

    def rollout_policy(self) -> ActorCriticRolloutPolicy:
        """Behaviour policy sharing this learner's parameters."""
        return ActorCriticRolloutPolicy(self.net, self.rng)

    def inference_policy(self) -> ActorCriticPolicy:
        """Policy for evaluation and serving."""
        return ActorCriticPolicy(self.net, self.action_space)

    def state_dict(self) -> dict[str, Any]:
        """Parameters, optimizer state, counters and the sampling RNG.

        An optimizer never built (every step ran in numpy, or none ran) is left out:
        the one built on first use after a restore is the same fresh Adam.
        """
        state: dict[str, Any] = {
            "model": self.net.state_dict(),
            "version": self.version,
            "env_steps": self.env_steps,
            "rng": json.dumps(self.rng.bit_generator.state),
        }
        if self._optimizer is not None:
            state["optimizer"] = self._optimizer.state_dict()
        elif self._optimizer_state is not None:
            state["optimizer"] = self._optimizer_state
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.net.load_state_dict(state["model"])
        if "optimizer" in state:  # kept until the optimizer is built (never, to only act)
            self._optimizer_state = state["optimizer"]
            self._apply_optimizer_state()
        self.version = int(state.get("version", 0))
        self.env_steps = int(state.get("env_steps", 0))
        if "rng" in state:
            self.rng.bit_generator.state = json.loads(state["rng"])


def box_actuator(space: SpaceSpec) -> BoxActuator:
    """Map ``[-1, 1]`` policy actions onto a box's bounds (bounded) or clip (unbounded)."""
    return BoxActuator(space)


class BoxActuator:
    """Affine map of policy actions onto a bounded box, then clip; reshape to the space."""

    def __init__(self, space: SpaceSpec) -> None:
        self.shape = space.shape
        self.bounded = space.is_bounded
        low = np.asarray(space.low if space.low is not None else (), dtype=np.float32)
        high = np.asarray(space.high if space.high is not None else (), dtype=np.float32)
        self.low, self.high = low, high
        self.dtype = np.dtype(space.dtype)

    def __call__(self, actions: np.ndarray) -> np.ndarray:
        """Environment actions ``[B, *shape]`` for policy actions ``[B, D]``."""
        out = np.asarray(actions, dtype=np.float32)
        if self.bounded:
            out = self.low + (np.clip(out, -1.0, 1.0) + 1.0) * 0.5 * (self.high - self.low)
        return out.reshape(out.shape[0], *self.shape).astype(self.dtype, copy=False)
