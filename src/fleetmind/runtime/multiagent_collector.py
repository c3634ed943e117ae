"""Collects one ``[T x E]`` trajectory per agent from a multi-agent vector env.

Per step: normalise each agent's observation (and the global state) with running
statistics, build every agent's model input with the learner's layout, sample all
actions at once, step the env. A row is valid for an agent when the agent took part
in that step (not a reset step, not after it left its episode). Finished episodes
are counted with their raw per-agent returns; the team return is their sum.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from fleetmind.algos.multiagent_base import InputBuilder, TeamRolloutPolicy
from fleetmind.core.agent import Actuator
from fleetmind.core.batch import Trajectory
from fleetmind.core.episodes import EpisodeStats
from fleetmind.core.errors import EnvironmentStepError
from fleetmind.core.normalizer import ObservationNormalizer, RunningMeanStd
from fleetmind.envs.team import MultiAgentStep, MultiAgentVectorEnv


class _AgentBuffers:
    """Preallocated ``[T, E]`` arrays of one agent."""

    def __init__(self, steps: int, envs: int, input_dim: int, action_dims: tuple[int, ...]):
        shape = (steps, envs)
        self.obs = np.zeros((*shape, input_dim), np.float32)
        discrete = not action_dims
        self.actions = np.zeros(shape + action_dims, np.int64 if discrete else np.float32)
        self.log_probs = np.zeros(shape, np.float32)
        self.values = np.zeros(shape, np.float32)
        self.next_values = np.zeros(shape, np.float32)
        self.rewards = np.zeros(shape, np.float32)
        self.terminated = np.zeros(shape, bool)
        self.truncated = np.zeros(shape, bool)
        self.valid = np.zeros(shape, bool)

    def trajectory(self, version: int) -> Trajectory:
        return Trajectory(
            obs=self.obs.copy(),
            actions=self.actions.copy(),
            log_probs=self.log_probs.copy(),
            values=self.values.copy(),
            rewards=self.rewards.copy(),
            terminated=self.terminated.copy(),
            truncated=self.truncated.copy(),
            valid=self.valid.copy(),
            next_values=self.next_values.copy(),
            policy_version=version,
        )


class MultiAgentCollector:
    """Steps a :class:`MultiAgentVectorEnv` with a team behaviour policy."""

    def __init__(
        self,
        env: MultiAgentVectorEnv,
        layout: InputBuilder,
        num_steps: int,
        actuators: Sequence[Actuator],
        obs_stats: Sequence[RunningMeanStd | None],
        state_stats: RunningMeanStd | None,
        seed: int = 0,
    ) -> None:
        self.env = env
        self.layout = layout
        self.num_steps = num_steps
        self.actuators = list(actuators)
        self.obs_stats = list(obs_stats)
        self.state_stats = state_stats
        self.stats = EpisodeStats()
        """Team returns (sum over agents) of finished episodes."""
        self.agent_returns: list[deque[float]] = [deque(maxlen=100) for _ in env.agents]
        """Per agent: returns of the latest finished episodes."""
        self.env_steps = 0
        """Joint environment steps taken (one per copy per step)."""
        n, e = env.num_agents, env.num_envs
        self._ep_return = np.zeros((e, n), np.float64)
        self._ep_length = np.zeros(e, np.int64)
        self._last = env.reset(seed=seed)
        self._check(self._last)
        self._update_stats(self._last)
        self._buffers: list[_AgentBuffers] | None = None

    @property
    def agents(self) -> tuple[str, ...]:
        """Agent names in order."""
        return tuple(self.env.agents)

    @property
    def agent_obs_stats(self) -> list[RunningMeanStd | None]:
        """Each agent's observation statistics (None: not normalised)."""
        return self.obs_stats

    def _check(self, step: MultiAgentStep) -> None:
        arrays = [*step.obs, step.rewards] + ([step.state] if step.state is not None else [])
        if not all(np.all(np.isfinite(a)) for a in arrays):
            raise EnvironmentStepError(
                f"environment {self.env.env_id} returned a NaN or infinite observation, state "
                f"or reward at env step {self.env_steps}; check the environment"
            )

    def _update_stats(self, step: MultiAgentStep) -> None:
        for stats, obs in zip(self.obs_stats, step.obs, strict=True):
            if stats is not None:
                stats.update(obs)
        if self.state_stats is not None and step.state is not None:
            self.state_stats.update(step.state)

    def model_inputs(self, step: MultiAgentStep) -> list[np.ndarray]:
        """Every agent's model input for the observations of ``step``."""
        obs = [
            ObservationNormalizer(s)(o) if s is not None else o
            for s, o in zip(self.obs_stats, step.obs, strict=True)
        ]
        state = step.state
        if state is not None and self.state_stats is not None:
            state = ObservationNormalizer(self.state_stats)(state)
        return [self.layout.model_input(i, obs, state) for i in range(len(obs))]

    def _allocate(self, inputs: list[np.ndarray], policy_out: list[Any]) -> list[_AgentBuffers]:
        return [
            _AgentBuffers(
                self.num_steps,
                self.env.num_envs,
                x.shape[1],
                tuple(np.asarray(out.actions).shape[1:]),
            )
            for x, out in zip(inputs, policy_out, strict=True)
        ]

    def collect(self, policy: TeamRolloutPolicy, policy_version: int = 0) -> list[Trajectory]:
        """Run ``num_steps`` vector steps; one trajectory per agent."""
        for t in range(self.num_steps):
            inputs = self.model_inputs(self._last)
            outs = policy.step(inputs)
            if self._buffers is None:
                self._buffers = self._allocate(inputs, outs)
            for buf, x, out in zip(self._buffers, inputs, outs, strict=True):
                buf.obs[t], buf.actions[t] = x, out.actions
                buf.log_probs[t], buf.values[t] = out.log_probs, out.values
                if t > 0:
                    buf.next_values[t - 1] = out.values
            actions = [act(o.actions) for act, o in zip(self.actuators, outs, strict=True)]
            step = self.env.step(actions)
            self.env_steps += self.env.num_envs
            self._check(step)
            self._record(t, step)
            self._update_stats(step)
            self._last = step
        buffers = self._buffers
        if buffers is None:
            raise EnvironmentStepError("num_steps must be positive to collect a trajectory")
        last = policy.step(self.model_inputs(self._last))
        for buf, out in zip(buffers, last, strict=True):
            buf.next_values[-1] = out.values
        return [buf.trajectory(policy_version) for buf in buffers]

    def _record(self, t: int, step: MultiAgentStep) -> None:
        buffers = self._buffers or []
        rewards = np.where(step.active, step.rewards, 0.0)
        for i, buf in enumerate(buffers):
            buf.valid[t] = step.active[:, i]
            buf.rewards[t] = rewards[:, i]
            buf.terminated[t] = step.terminated[:, i] & step.active[:, i]
            buf.truncated[t] = step.truncated[:, i] & step.active[:, i]
        self._ep_return += rewards
        self._ep_length += step.active.any(axis=1)
        for e in np.flatnonzero(step.episode_end):
            self.stats.add(float(self._ep_return[e].sum()), int(self._ep_length[e]))
            for i, returns in enumerate(self.agent_returns):
                returns.append(float(self._ep_return[e, i]))
        self._ep_return[step.episode_end] = 0.0
        self._ep_length[step.episode_end] = 0

    def agent_return_means(self) -> dict[str, float | None]:
        """Mean return of the latest episodes, per agent name."""
        return {
            agent: float(np.mean(r)) if r else None
            for agent, r in zip(self.env.agents, self.agent_returns, strict=True)
        }
