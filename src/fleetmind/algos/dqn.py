"""Deep Q-learning (DQN) with double Q, dueling heads, n-step returns and optional PER.

The trainer drives it like PPO: each vector-env step asks the rollout policy for
epsilon-greedy actions, and every ``rollout_length`` steps hands a ``[T, E]``
chunk to :meth:`DQNLearner.update`, which stores it in the replay buffer and,
every ``train_frequency`` env steps, runs ``gradient_steps`` updates::

    target = sum_{k<n} gamma^k r_{t+k} + gamma^n * Q_target(s_{t+n}, argmax_a Q(s_{t+n}, a))
    loss   = huber(Q(s_t, a_t) - target)          # weighted by PER importance weights

The bootstrap term is dropped where the episode terminated and kept where it was
truncated (the final observation is the one stored after the last step). The
target network is refreshed every ``target_update_interval`` env steps. Epsilon
falls linearly from ``exploration_initial_eps`` to ``exploration_final_eps``.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fleetmind.algos.base import AlgoSpec, StepOutput
from fleetmind.algos.q_network import GreedyQPolicy, QNetwork, epsilon_greedy
from fleetmind.algos.replay import ReplayBuffer, SampledBatch
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import ConfigError
from fleetmind.core.spaces import SpaceSpec

log = logging.getLogger(__name__)


@dataclass
class DQNConfig:
    """Hyperparameters of DQN (defaults: RL-Zoo's CartPole settings)."""

    learning_rate: float = 2.3e-3
    """Adam step size."""
    buffer_size: int = 100_000
    """Replay capacity in env steps (all envs together)."""
    learning_starts: int = 1000
    """Env steps collected before the first gradient step."""
    batch_size: int = 64
    """Transitions per gradient step."""
    gamma: float = 0.99
    """Discount factor in [0, 1]."""
    train_frequency: int = 256
    """Env steps (all envs together) between rounds of gradient steps."""
    gradient_steps: int = 128
    """Gradient steps per round."""
    target_update_interval: int = 10
    """Env steps between target-network refreshes."""
    target_tau: float = 1.0
    """Refresh rate: target <- tau * online + (1 - tau) * target (1 = hard copy)."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start of training."""
    exploration_final_eps: float = 0.04
    """Epsilon after the schedule ends (also used by non-deterministic inference)."""
    exploration_steps: int = 8000
    """Env steps over which epsilon falls linearly to its final value."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Widths of the hidden layers of the Q-network."""
    double: bool = True
    """Double DQN: the online network picks the bootstrap action, the target values it."""
    dueling: bool = False
    """Dueling head: Q = V + A - mean(A)."""
    n_step: int = 1
    """Length of the reward sum before bootstrapping."""
    prioritized: bool = False
    """Prioritised replay (proportional, by absolute TD error)."""
    priority_alpha: float = 0.6
    """How strongly priorities shape sampling (0 = uniform)."""
    priority_beta: float = 0.4
    """Initial importance-weight exponent; rises linearly to 1 over priority_beta_steps."""
    priority_beta_steps: int = 100_000
    """Env steps over which beta rises to 1."""
    max_grad_norm: float | None = 10.0
    """Clip the gradient norm to this; None disables clipping."""
    rollout_length: int = 4
    """Steps per env in each chunk handed to update (replay makes small chunks cheap)."""
    replay_in_checkpoint: bool = True
    """Save the replay buffer in checkpoints so that --resume continues exactly."""

    def validate(self) -> None:
        """Raise ConfigError for values outside their ranges."""
        positive = (
            "learning_rate",
            "buffer_size",
            "batch_size",
            "train_frequency",
            "target_update_interval",
            "n_step",
            "rollout_length",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"dqn.{name} must be positive, got {getattr(self, name)}")
        for name in (
            "gamma",
            "target_tau",
            "exploration_initial_eps",
            "exploration_final_eps",
            "priority_alpha",
            "priority_beta",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"dqn.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.gradient_steps < 0 or self.learning_starts < 0:
            raise ConfigError("dqn.gradient_steps and dqn.learning_starts must not be negative")
        if self.buffer_size < self.batch_size:
            raise ConfigError(
                f"dqn.buffer_size ({self.buffer_size}) must be at least "
                f"dqn.batch_size ({self.batch_size})"
            )


def _to_tensors(batch: SampledBatch) -> dict[str, torch.Tensor]:
    names = ("obs", "actions", "returns", "next_obs", "discounts", "weights")
    return {name: torch.from_numpy(getattr(batch, name)) for name in names}


def _split(tensors: dict[str, torch.Tensor], size: int) -> list[dict[str, torch.Tensor]]:
    count = len(tensors["actions"]) // size
    return [{k: v[i * size : (i + 1) * size] for k, v in tensors.items()} for i in range(count)]


def _linear(start: float, end: float, steps: int, t: int) -> float:
    return end if t >= steps else start + (end - start) * t / max(steps, 1)


class _EpsilonGreedyRollout:
    """The behaviour policy: reads the learner's current network and epsilon."""

    def __init__(self, learner: DQNLearner) -> None:
        self.learner = learner

    def step(self, model_input: np.ndarray) -> StepOutput:
        with torch.inference_mode():
            q = self.learner.q_net(torch.as_tensor(model_input)).numpy()
        actions = epsilon_greedy(q, self.learner.epsilon(), self.learner.rng)
        zeros = np.zeros(len(actions), dtype=np.float32)
        return StepOutput(actions=actions, log_probs=zeros, values=q.max(axis=1))


class DQNLearner:
    """Owns the Q-network, its target copy, the optimizer and the replay buffer."""

    def __init__(
        self, config: DQNConfig, observation_space: SpaceSpec, action_space: SpaceSpec, seed: int
    ) -> None:
        config.validate()
        message = supports_action(action_space)
        if message is not None:
            raise ConfigError(message)
        if observation_space.kind not in ("box", "discrete"):
            raise ConfigError(
                f"DQN needs a box or discrete observation space, got {observation_space.kind}"
            )
        self.config = config
        self.observation_space = observation_space
        self.num_actions = int(action_space.n or 0)
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.q_net = QNetwork(
            observation_space, self.num_actions, config.hidden_sizes, config.dueling
        )
        self.target_net = copy.deepcopy(self.q_net).requires_grad_(False)
        self.optimizer = torch.optim.Adam(
            self.q_net.parameters(), lr=config.learning_rate, fused=True
        )
        self.buffer: ReplayBuffer | None = None
        self.version = 0
        self.env_steps = 0
        self.total_env_steps: int | None = None
        self.grad_steps = 0
        self._since_train = 0
        self._since_target = 0

    def epsilon(self) -> float:
        """Exploration rate at the current env step."""
        c = self.config
        return _linear(
            c.exploration_initial_eps, c.exploration_final_eps, c.exploration_steps, self.env_steps
        )

    def rollout_policy(self) -> _EpsilonGreedyRollout:
        """Epsilon-greedy behaviour policy on the current network."""
        return _EpsilonGreedyRollout(self)

    def inference_policy(self) -> GreedyQPolicy:
        """Greedy policy (epsilon-greedy with the final epsilon when not deterministic)."""
        return GreedyQPolicy(
            self.q_net, self.num_actions, self.config.exploration_final_eps, self.seed
        )

    def _buffer_for(self, trajectory: Trajectory) -> ReplayBuffer:
        if self.buffer is None or self.buffer.num_envs != trajectory.num_envs:
            if self.buffer is not None:
                log.warning(
                    "number of envs changed from %d to %d; starting an empty replay buffer",
                    self.buffer.num_envs,
                    trajectory.num_envs,
                )
            c = self.config
            self.buffer = ReplayBuffer(
                c.buffer_size,
                trajectory.num_envs,
                tuple(trajectory.obs.shape[2:]),
                prioritized_alpha=c.priority_alpha if c.prioritized else None,
            )
        return self.buffer

    def update(self, trajectory: Trajectory) -> dict[str, float]:
        """Store the chunk; refresh the target and train when their intervals come round."""
        c = self.config
        buffer = self._buffer_for(trajectory)
        buffer.add(trajectory)
        steps = trajectory.num_steps * trajectory.num_envs
        self.env_steps += steps
        self._since_target += steps
        self._since_train += steps
        if self._since_target >= c.target_update_interval:
            self._since_target %= c.target_update_interval
            self._refresh_target()
        rounds, self._since_train = divmod(self._since_train, c.train_frequency)
        metrics = {"epsilon": self.epsilon(), "replay_size": float(len(buffer))}
        if self.env_steps >= c.learning_starts and len(buffer) >= c.batch_size:
            metrics.update(self._train(buffer, rounds * c.gradient_steps))
        self.version += 1
        return metrics

    def _refresh_target(self) -> None:
        tau = self.config.target_tau
        with torch.no_grad():
            for target, online in zip(
                self.target_net.parameters(), self.q_net.parameters(), strict=True
            ):
                if tau >= 1.0:
                    target.copy_(online)
                else:
                    target.lerp_(online, tau)

    def _train(self, buffer: ReplayBuffer, steps: int) -> dict[str, float]:
        if steps == 0:
            return {}
        c = self.config
        beta = _linear(c.priority_beta, 1.0, c.priority_beta_steps, self.env_steps)
        losses = torch.zeros(steps)
        q_means = torch.zeros(steps)
        if buffer.priorities is None:
            # The buffer and the target network stay fixed for the whole round: draw
            # every minibatch at once and evaluate the target network in one pass.
            whole = buffer.sample(steps * c.batch_size, self.rng, c.n_step, c.gamma, beta)
            tensors = _to_tensors(whole)
            with torch.no_grad():
                tensors["next_target"] = self.target_net(tensors["next_obs"])
            for i, part in enumerate(_split(tensors, c.batch_size)):
                losses[i], q_means[i], _ = self._gradient_step(part)
        else:
            for i in range(steps):
                batch = buffer.sample(c.batch_size, self.rng, c.n_step, c.gamma, beta)
                part = _to_tensors(batch)
                with torch.no_grad():
                    part["next_target"] = self.target_net(part["next_obs"])
                losses[i], q_means[i], td = self._gradient_step(part)
                buffer.update_priorities(batch.indices, td.numpy())
        self.grad_steps += steps
        return {
            "loss": float(losses.mean()),
            "q_mean": float(q_means.mean()),
            "gradient_steps": float(self.grad_steps),
        }

    def _gradient_step(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One Adam step on the Huber TD loss; returns (loss, mean Q, TD errors)."""
        size = len(batch["actions"])
        q_both = self.q_net(torch.cat([batch["obs"], batch["next_obs"]]))
        q_taken = q_both[:size].gather(1, batch["actions"][:, None]).squeeze(1)
        with torch.no_grad():
            if self.config.double:
                best = q_both[size:].argmax(dim=1, keepdim=True)
                next_q = batch["next_target"].gather(1, best).squeeze(1)
            else:
                next_q = batch["next_target"].max(dim=1).values
            target = batch["returns"] + batch["discounts"] * next_q
        per_item = torch.nn.functional.smooth_l1_loss(q_taken, target, reduction="none")
        loss = (batch["weights"] * per_item).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(
                self.q_net.parameters(), self.config.max_grad_norm, foreach=True
            )
        self.optimizer.step()
        return loss.detach(), q_taken.detach().mean(), (q_taken - target).detach()

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizer, counters, RNG and (optionally) the replay buffer."""
        state: dict[str, Any] = {
            "q_net": self.q_net.state_dict(),
            "target_net": self.target_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "counters": {
                "version": self.version,
                "env_steps": self.env_steps,
                "grad_steps": self.grad_steps,
                "since_train": self._since_train,
                "since_target": self._since_target,
            },
            "rng": self.rng.bit_generator.state,
        }
        if self.config.replay_in_checkpoint and self.buffer is not None:
            replay = {
                k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v
                for k, v in self.buffer.state().items()
            }
            state["replay"] = {"num_envs": self.buffer.num_envs, **replay}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.q_net.load_state_dict(state["q_net"])
        self.target_net.load_state_dict(state["target_net"])
        self.optimizer.load_state_dict(state["optimizer"])
        counters = state["counters"]
        self.version = int(counters["version"])
        self.env_steps = int(counters["env_steps"])
        self.grad_steps = int(counters["grad_steps"])
        self._since_train = int(counters["since_train"])
        self._since_target = int(counters["since_target"])
        self.rng.bit_generator.state = state["rng"]
        replay = state.get("replay")
        if replay is not None:
            c = self.config
            obs = replay["obs"]
            self.buffer = ReplayBuffer(
                c.buffer_size,
                int(replay["num_envs"]),
                tuple(obs.shape[2:]),
                prioritized_alpha=c.priority_alpha if c.prioritized else None,
            )
            self.buffer.load_state(
                {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in replay.items()}
            )


def supports_action(space: SpaceSpec) -> str | None:
    """DQN needs one discrete action; everything else is pointed to PPO."""
    if space.kind == "discrete":
        return None
    return (
        f"DQN needs a discrete action space, but this env's actions are {space.kind} "
        f"with shape {list(space.shape)}; use --algo ppo for continuous or "
        "multi-discrete actions"
    )


def build(
    config: DQNConfig, observation_space: SpaceSpec, action_space: SpaceSpec, seed: int
) -> DQNLearner:
    """The registry's constructor."""
    return DQNLearner(config, observation_space, action_space, seed)


SPEC = AlgoSpec(
    name="dqn",
    summary="Deep Q-learning: double, dueling, n-step, target network, (prioritised) replay",
    config_cls=DQNConfig,
    build=build,
    rollout_length=lambda config: int(config.rollout_length),
    supports_action=supports_action,
)
