"""Model inputs, networks and policies of the multi-agent PPO family.

Each agent's model input is one row ``[actor input | critic input]``:

- actor input: the agent's own (normalised) observation, followed by its one-hot id
  when several agents share one network;
- critic input (centralised critic only): the global ``state()`` where the env has
  one, else every agent's observation concatenated; again followed by the one-hot id
  under sharing. Without a centralised critic it is empty and the critic reads the
  actor input.

:class:`SplitActorCritic` is the PPO :class:`ActorCritic` whose actor and critic read
their own columns of that row, so ``ppo_loss`` applies to it unchanged. At
evaluation time only the actor input exists, and :class:`ActorPolicy` needs no more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from fleetmind.algos.actor_critic.network import ActorCritic
from fleetmind.core.agent import Decision
from fleetmind.core.learning import StepOutput
from fleetmind.core.spaces import SpaceSpec
from fleetmind.envs.team import MultiAgentSpec
from fleetmind.nn.mlp import mlp


class Columns(nn.Module):
    """Selects the columns ``[start, stop)`` of its input."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x[..., start:stop]``."""
        return x[..., self.start : self.stop]


class SplitActorCritic(ActorCritic):
    """An actor on the first ``actor_dim`` columns, a critic on the next ``critic_dim``."""

    def __init__(
        self,
        actor_dim: int,
        critic_dim: int,
        action_space: SpaceSpec,
        hidden: Sequence[int],
        activation: str,
        init_log_std: float,
    ) -> None:
        super().__init__(actor_dim, action_space, hidden, activation, init_log_std)
        self.actor = nn.Sequential(Columns(0, actor_dim), *self.actor)
        end = actor_dim + critic_dim
        self.critic = nn.Sequential(
            Columns(actor_dim, end), *mlp(critic_dim, hidden, 1, activation, out_gain=1.0)
        )


class InputLayout:
    """How each agent's model input row is assembled (see the module docstring)."""

    def __init__(self, spec: MultiAgentSpec, agent_id: bool, centralized_critic: bool) -> None:
        self.spec = spec
        self.num_agents = len(spec.agents)
        self.agent_id = agent_id
        self.centralized_critic = centralized_critic
        self._eye = np.eye(self.num_agents, dtype=np.float32)
        id_dim = self.num_agents if agent_id else 0
        self.actor_dims = [s.flat_dim + id_dim for s in spec.observation_spaces]
        if not centralized_critic:
            self.critic_dim = 0
        elif spec.state_space is not None:
            self.critic_dim = spec.state_space.flat_dim + id_dim
        else:
            self.critic_dim = sum(s.flat_dim for s in spec.observation_spaces) + id_dim

    @property
    def reads_state(self) -> bool:
        """True when the critic input holds the global ``state()``."""
        return self.centralized_critic and self.spec.state_space is not None

    def split(self, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Inverse of :meth:`model_input` on ``[..., D]`` rows: every agent's observation,
        and the state when the critic reads it (else None)."""
        spaces = self.spec.observation_spaces
        obs = [x[..., : s.flat_dim] for x, s in zip(inputs, spaces, strict=True)]
        state_space = self.spec.state_space
        if not self.reads_state or state_space is None:
            return obs, None
        start = self.actor_dims[0]
        return obs, inputs[0][..., start : start + state_space.flat_dim]

    def _with_id(self, agent: int, rows: np.ndarray) -> np.ndarray:
        if not self.agent_id:
            return rows
        ids = np.broadcast_to(self._eye[agent], (rows.shape[0], self.num_agents))
        return np.concatenate([rows, ids], axis=1)

    def actor_input(self, agent: int, obs: np.ndarray) -> np.ndarray:
        """``[B, A]`` policy input of ``agent`` from its own ``[B, D]`` observations."""
        return self._with_id(agent, np.asarray(obs, dtype=np.float32))

    def model_input(
        self, agent: int, obs: Sequence[np.ndarray], state: np.ndarray | None
    ) -> np.ndarray:
        """``[E, A + C]`` training input of ``agent`` (``obs[i]`` is agent ``i``'s)."""
        actor = self.actor_input(agent, obs[agent])
        if not self.centralized_critic:
            return actor
        central = state if state is not None else np.concatenate(list(obs), axis=1)
        critic = self._with_id(agent, np.asarray(central, dtype=np.float32))
        return np.concatenate([actor, critic], axis=1)


class NetSampler:
    """The behaviour policy of all agents: one batched forward pass per network."""

    def __init__(self, nets: Sequence[ActorCritic], net_of_agent: Sequence[int]) -> None:
        self.nets = list(nets)
        self.net_of_agent = list(net_of_agent)

    @torch.no_grad()
    def step(self, model_inputs: Sequence[np.ndarray]) -> list[StepOutput]:
        """Sample every agent's actions for ``[E, D_i]`` inputs."""
        outs: list[StepOutput | None] = [None] * len(model_inputs)
        for k, net in enumerate(self.nets):
            members = [i for i, n in enumerate(self.net_of_agent) if n == k]
            rows = [model_inputs[i].shape[0] for i in members]
            batch = torch.from_numpy(np.concatenate([model_inputs[i] for i in members]))
            actions, logp, values = net.sample(batch)
            start = 0
            for i, count in zip(members, rows, strict=True):
                part = slice(start, start + count)
                outs[i] = StepOutput(
                    actions[part].numpy(), logp[part].numpy(), values[part].numpy()
                )
                start += count
        return [o for o in outs if o is not None]


class ActorPolicy:
    """A :class:`fleetmind.core.Policy` for one agent: the actor of its network."""

    def __init__(self, net: ActorCritic, action_space: SpaceSpec) -> None:
        self.net = net
        self.action_space = action_space

    @property
    def output_specs(self) -> dict[str, tuple[int, ...]]:
        """Per-row shapes of the outputs."""
        if self.net.discrete:
            return {"action_probs": (int(self.action_space.n or 0),)}
        dim = self.action_space.flat_dim
        return {"action_mean": (dim,), "action_log_std": (dim,)}

    differentiable = True
    """Decisions can be explained by gradients (:meth:`action_score`)."""
    score_name = "log_prob"
    """What :meth:`action_score` measures."""

    def action_score(self, model_input: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Log-probability of the chosen ``actions``, differentiable in ``model_input``."""
        return self.net.log_prob(model_input, actions)

    @torch.inference_mode()
    def decide(self, model_input: np.ndarray, deterministic: bool = False) -> Decision:
        """Actions (policy space) and outputs for ``[B, A]`` actor inputs."""
        obs = torch.from_numpy(np.ascontiguousarray(model_input, dtype=np.float32))
        head = self.net.actor(obs)
        if self.net.discrete:
            probs = torch.softmax(head, dim=-1)
            actions = probs.argmax(-1) if deterministic else torch.multinomial(probs, 1)[:, 0]
            return Decision(actions.numpy(), {"action_probs": probs.numpy()})
        log_std = self.net.log_std.expand_as(head)
        actions = head if deterministic else head + log_std.exp() * torch.randn_like(head)
        return Decision(
            actions.numpy(), {"action_mean": head.numpy(), "action_log_std": log_std.numpy()}
        )
