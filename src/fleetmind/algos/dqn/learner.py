"""Deep Q-learning (DQN) with double Q, dueling heads, n-step returns and optional PER.

The trainer drives it like PPO: each vector-env step asks the rollout policy for
epsilon-greedy actions, and every ``rollout_length`` steps hands a ``[T, E]``
chunk to :meth:`DQNLearner.update`, which stores it in the replay buffer and,
every ``train_frequency`` env steps, runs ``gradient_steps`` updates::

    target = sum_{k<n} gamma^k r_{t+k} + gamma^n * Q_target(s_{t+n}, argmax_a Q(s_{t+n}, a))
    loss   = huber(Q(s_t, a_t) - target)          # weighted by PER importance weights

The bootstrap term is dropped where the episode terminated and kept where it was
truncated (the final observation is the one stored after the last step). The
target network is refreshed every ``target_update_interval`` env steps and stays
fixed during a round, as in SB3. Epsilon falls linearly from
``exploration_initial_eps`` to ``exploration_final_eps``.

For the MLP Q-network on a CPU the same step runs in numpy
(:mod:`fleetmind.algos.dqn.numpy_step`, ``backend``), several times faster for small
networks; so do the behaviour policy and the target pass.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from typing import Any

import numpy as np
import torch

from fleetmind.algos.base import AlgoSpec
from fleetmind.algos.dqn.config import DQNConfig
from fleetmind.algos.dqn.numpy_step import NumpyDQNStep, NumpyQNetwork, numpy_unsupported_reason
from fleetmind.algos.dqn.q_network import GreedyQPolicy, QNetwork, epsilon_greedy
from fleetmind.algos.dqn.replay import ReplayBuffer, SampledBatch
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import ConfigError
from fleetmind.core.learning import StepOutput
from fleetmind.core.spaces import SpaceSpec

log = logging.getLogger(__name__)


def _rows(batch: SampledBatch, start: int, stop: int) -> SampledBatch:
    """Rows ``start:stop`` of every array of ``batch`` (views, no copies)."""
    return SampledBatch(
        **{f.name: getattr(batch, f.name)[start:stop] for f in dataclasses.fields(batch)}
    )


def _linear(start: float, end: float, steps: int, t: int) -> float:
    return end if t >= steps else start + (end - start) * t / max(steps, 1)


class _EpsilonGreedyRollout:
    """The behaviour policy: reads the learner's current network and epsilon."""

    def __init__(self, learner: DQNLearner) -> None:
        self.learner = learner

    def step(self, model_input: np.ndarray) -> StepOutput:
        q = self.learner.q_values(model_input)
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
        self._numpy: NumpyDQNStep | None = None
        self._numpy_target: NumpyQNetwork | None = None
        self._bind_numpy()

    def _bind_numpy(self) -> None:
        """Build the numpy views when the backend resolves to numpy (again after a load)."""
        self._numpy, self._numpy_target = None, None
        reason = numpy_unsupported_reason(self.q_net)
        if self.config.backend == "numpy" and reason is not None:
            raise ConfigError(f"dqn.backend numpy cannot train this network: {reason}; use torch")
        if self.config.backend == "torch" or reason is not None:
            return
        c = self.config
        self._numpy = NumpyDQNStep(self.q_net, self.optimizer, c.double, c.max_grad_norm)
        self._numpy_target = NumpyQNetwork(self.target_net)
        log.debug("DQN gradient steps run on the numpy backend")

    @property
    def backend(self) -> str:
        """The backend in use: ``numpy`` or ``torch``."""
        return "numpy" if self._numpy is not None else "torch"

    def q_values(self, model_input: np.ndarray) -> np.ndarray:
        """``Q(s, .)`` of the online network for ``[B, ...]`` inputs."""
        if self._numpy is not None:
            return self._numpy.q.q_values(model_input)
        with torch.inference_mode():
            return np.asarray(self.q_net(torch.as_tensor(model_input)).numpy())

    def _target_values(self, obs: np.ndarray) -> np.ndarray:
        if self._numpy_target is not None:
            return self._numpy_target.q_values(obs)
        with torch.no_grad():
            return np.asarray(self.target_net(torch.from_numpy(obs)).numpy())

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
        losses = np.zeros(steps)
        q_means = np.zeros(steps)
        if buffer.priorities is None:
            # The buffer and the target network stay fixed for the whole round: draw
            # every minibatch at once and evaluate the target network in one pass.
            whole = buffer.sample(steps * c.batch_size, self.rng, c.n_step, c.gamma, beta)
            next_target = self._target_values(whole.next_obs)
            for i in range(steps):
                start, stop = i * c.batch_size, (i + 1) * c.batch_size
                part = _rows(whole, start, stop)
                losses[i], q_means[i], _ = self._step(part, next_target[start:stop])
        else:
            for i in range(steps):
                batch = buffer.sample(c.batch_size, self.rng, c.n_step, c.gamma, beta)
                next_target = self._target_values(batch.next_obs)
                losses[i], q_means[i], td = self._step(batch, next_target)
                buffer.update_priorities(batch.indices, td)
        self.grad_steps += steps
        return {
            "loss": float(losses.mean()),
            "q_mean": float(q_means.mean()),
            "gradient_steps": float(self.grad_steps),
        }

    def _step(
        self, batch: SampledBatch, next_target: np.ndarray
    ) -> tuple[float, float, np.ndarray]:
        """One Adam step on the Huber TD loss; returns (loss, mean Q, TD errors)."""
        if self._numpy is not None:
            return self._numpy.step(batch, next_target)
        return self._torch_step(batch, next_target)

    def _torch_step(
        self, batch: SampledBatch, next_target_values: np.ndarray
    ) -> tuple[float, float, np.ndarray]:
        """The autograd step, for any network."""
        size = len(batch.actions)
        obs, next_obs = torch.from_numpy(batch.obs), torch.from_numpy(batch.next_obs)
        actions = torch.from_numpy(batch.actions)
        q_both = self.q_net(torch.cat([obs, next_obs]))
        q_taken = q_both[:size].gather(1, actions[:, None]).squeeze(1)
        with torch.no_grad():
            next_target = torch.from_numpy(next_target_values)
            if self.config.double:
                best = q_both[size:].argmax(dim=1, keepdim=True)
                next_q = next_target.gather(1, best).squeeze(1)
            else:
                next_q = next_target.max(dim=1).values
            target = torch.from_numpy(batch.returns) + torch.from_numpy(batch.discounts) * next_q
        per_item = torch.nn.functional.smooth_l1_loss(q_taken, target, reduction="none")
        loss = (torch.from_numpy(batch.weights) * per_item).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(
                self.q_net.parameters(), self.config.max_grad_norm, foreach=True
            )
        self.optimizer.step()
        td = (q_taken - target).detach().numpy()
        return float(loss.detach()), float(q_taken.detach().mean()), td

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
        self._bind_numpy()  # the optimizer's state tensors were replaced
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
