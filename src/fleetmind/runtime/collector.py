"""Collects one ``[T x E]`` trajectory per agent from a team vector env.

One collector for teams of any size; a single-agent Gymnasium env is a team of one
(:class:`~fleetmind.envs.gym_team.GymTeamEnv`). Per step: standardise each
agent's observation (and the global state) with running statistics, build every
agent's model input (a team's ``layout`` may add an agent id or the critic's
central state; without one the input is the agent's observation), sample every
action at once, step the env. Buffers are allocated once and reused.

A row is valid for an agent when the agent took part in that step (not an
autoreset step, not after it left its episode). Rewards are optionally scaled by
the running spread of each agent's discounted return. Finished episodes are
counted with their raw returns: the team return is the sum over agents, and each
agent's own return is kept too. An env that reports ``decision`` flags marks
observations where the next action can change nothing; the trajectory's
``decision`` array records them (None when the env never reports them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from fleetmind.core.agent import Actuator
from fleetmind.core.batch import Trajectory
from fleetmind.core.episodes import AgentReturns, EpisodeStats
from fleetmind.core.errors import ConfigError, EnvironmentStepError
from fleetmind.core.exchange import Episode
from fleetmind.core.learning import InputBuilder, StepOutput, TeamRolloutPolicy
from fleetmind.core.normalizer import ObservationNormalizer, RunningMeanStd
from fleetmind.envs.team import MultiAgentSpec, MultiAgentStep


class TeamEnv(Protocol):
    """``E`` copies of an environment with an agent axis (one agent or many)."""

    env_id: str
    num_envs: int
    spec: MultiAgentSpec

    def reset(self, seed: int | None = None) -> MultiAgentStep:
        """Reset every copy."""
        ...

    def step(self, actions: Sequence[np.ndarray]) -> MultiAgentStep:
        """One action batch per agent."""
        ...

    def close(self) -> None:
        """Release the copies."""
        ...


class _AgentBuffers:
    """Preallocated ``[T, E]`` arrays of one agent."""

    def __init__(self, steps: int, envs: int, inputs: np.ndarray, actions: np.ndarray) -> None:
        shape = (steps, envs)
        self.obs = np.zeros(shape + inputs.shape[1:], np.float32)
        action_dims = tuple(np.asarray(actions).shape[1:])
        self.actions = np.zeros(shape + action_dims, np.int64 if not action_dims else np.float32)
        self.log_probs = np.zeros(shape, np.float32)
        self.values = np.zeros(shape, np.float32)
        self.next_values = np.zeros(shape, np.float32)
        self.rewards = np.zeros(shape, np.float32)
        self.terminated = np.zeros(shape, bool)
        self.truncated = np.zeros(shape, bool)
        self.valid = np.zeros(shape, bool)
        self.decision = np.ones(shape, bool)

    def trajectory(self, version: int, decisions: bool) -> Trajectory:
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
            decision=self.decision.copy() if decisions else None,
        )


class RewardScaler:
    """Divides each agent's rewards by the running spread of its discounted return."""

    def __init__(self, gamma: float, envs: int, agents: int) -> None:
        self.gamma = gamma
        self.stats = [RunningMeanStd(()) for _ in range(agents)]
        self._returns = [np.zeros(envs, dtype=np.float64) for _ in range(agents)]

    def __call__(
        self, agent: int, reward: np.ndarray, done: np.ndarray, valid: np.ndarray
    ) -> np.ndarray:
        """Scaled float32 rewards of ``agent``; updates its statistics."""
        stats = self.stats[agent]
        disc = self._returns[agent] * self.gamma + reward
        stats.update(disc[valid])
        disc[done] = 0.0
        self._returns[agent] = disc
        return (reward / np.sqrt(stats.var + 1e-8)).astype(np.float32)


class Collector:
    """Steps a :class:`TeamEnv` with a team behaviour policy."""

    def __init__(
        self,
        env: TeamEnv,
        num_steps: int,
        actuators: Sequence[Actuator],
        obs_stats: Sequence[RunningMeanStd | None],
        state_stats: RunningMeanStd | None = None,
        layout: InputBuilder | None = None,
        reward_gamma: float | None = None,
        seed: int = 0,
    ) -> None:
        if num_steps <= 0:
            raise ConfigError(f"{num_steps=} must be positive to collect a trajectory")
        self.env = env
        self.num_steps = num_steps
        self.actuators = list(actuators)
        self.obs_stats = list(obs_stats)
        self.state_stats = state_stats
        self.layout = layout
        n, e = len(env.spec.agents), env.num_envs
        self.reward_scaler = RewardScaler(reward_gamma, e, n) if reward_gamma is not None else None
        self._raw_rewards = None if self.reward_scaler is None else np.zeros((num_steps, e, n))
        self.stats = EpisodeStats()
        """Team returns (sum over agents) of finished episodes."""
        self.agent_returns = AgentReturns(env.spec.agents)
        """Per agent: returns of the latest finished episodes."""
        self.env_steps = 0
        """Environment steps taken (one per copy per step)."""
        self.finished: list[Episode] = []
        """Episodes finished since the last :meth:`take_episodes`."""
        self._normalizers = [None if s is None else ObservationNormalizer(s) for s in obs_stats]
        self._state_normalizer = None if state_stats is None else ObservationNormalizer(state_stats)
        self._ep_return = np.zeros((e, n), np.float64)
        self._ep_length = np.zeros(e, np.int64)
        self._buffers: list[_AgentBuffers] | None = None
        self._last = env.reset(seed=seed)
        self._reports_decisions = self._last.decision is not None
        self._check(self._last)

    def take_episodes(self) -> list[Episode]:
        """The episodes finished since the previous call."""
        finished, self.finished = self.finished, []
        return finished

    def raw_rewards(self) -> np.ndarray | None:
        """The last rollout's ``[T, E, N]`` rewards before scaling (None: not scaled)."""
        raw = self._raw_rewards
        return None if raw is None else raw.astype(np.float32)

    @property
    def agents(self) -> tuple[str, ...]:
        """Agent names in order."""
        return tuple(self.env.spec.agents)

    @property
    def reward_stats(self) -> list[RunningMeanStd] | None:
        """Each agent's discounted-return statistics (None: rewards are not scaled)."""
        return None if self.reward_scaler is None else self.reward_scaler.stats

    def _check(self, step: MultiAgentStep) -> None:
        for obs in step.obs:
            if not np.isfinite(obs).all():
                flat = obs.reshape(obs.shape[0], -1)
                bad = np.unique(np.argwhere(~np.isfinite(flat))[:, 0])
                raise EnvironmentStepError(
                    f"environment {self.env.env_id} returned a NaN or infinite observation at "
                    f"env step {self.env_steps} (copies {bad.tolist()}); check the environment"
                )
        others = [step.rewards] + ([step.state] if step.state is not None else [])
        if not all(np.isfinite(a).all() for a in others):
            raise EnvironmentStepError(
                f"environment {self.env.env_id} returned a NaN or infinite state or reward at "
                f"env step {self.env_steps}; check the environment"
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
            o if norm is None else norm(o)
            for norm, o in zip(self._normalizers, step.obs, strict=True)
        ]
        if self.layout is None:
            return obs
        state = step.state
        if state is not None and self._state_normalizer is not None:
            state = self._state_normalizer(state)
        return [self.layout.model_input(i, obs, state) for i in range(len(obs))]

    def collect(self, policy: TeamRolloutPolicy, policy_version: int = 0) -> list[Trajectory]:
        """Run ``num_steps`` vector steps; one trajectory per agent."""
        for t in range(self.num_steps):
            inputs = self.model_inputs(self._last)
            # Fold row t once it is normalised: the statistics then hold exactly this
            # rollout's rows (a chunk's delta is its own rows), row t seen with rows < t.
            self._update_stats(self._last)
            outs = policy.step(inputs)
            buffers = self._buffers or self._allocate(inputs, outs)
            for i, (buf, x, out) in enumerate(zip(buffers, inputs, outs, strict=True)):
                buf.obs[t], buf.actions[t] = x, out.actions
                buf.log_probs[t], buf.values[t] = out.log_probs, out.values
                if t > 0:
                    buf.next_values[t - 1] = out.values
                if self._last.decision is not None:
                    buf.decision[t] = self._last.decision[:, i]
                else:
                    buf.decision[t] = True
            actions = [act(o.actions) for act, o in zip(self.actuators, outs, strict=True)]
            step = self.env.step(actions)
            self.env_steps += self.env.num_envs
            self._check(step)
            self._record(t, step, buffers)
            self._reports_decisions |= step.decision is not None
            self._last = step
        buffers = self._buffers or []
        last = policy.step(self.model_inputs(self._last))
        for buf, out in zip(buffers, last, strict=True):
            buf.next_values[-1] = out.values
        return [buf.trajectory(policy_version, self._reports_decisions) for buf in buffers]

    def _allocate(self, inputs: list[np.ndarray], outs: list[StepOutput]) -> list[_AgentBuffers]:
        self._buffers = [
            _AgentBuffers(self.num_steps, self.env.num_envs, x, out.actions)
            for x, out in zip(inputs, outs, strict=True)
        ]
        return self._buffers

    def _record(self, t: int, step: MultiAgentStep, buffers: list[_AgentBuffers]) -> None:
        rewards = np.where(step.active, step.rewards, 0.0)
        if self._raw_rewards is not None:
            self._raw_rewards[t] = rewards
        for i, buf in enumerate(buffers):
            valid = step.active[:, i]
            term = step.terminated[:, i] & valid
            trunc = step.truncated[:, i] & valid
            buf.valid[t], buf.terminated[t], buf.truncated[t] = valid, term, trunc
            if self.reward_scaler is None:
                buf.rewards[t] = rewards[:, i]
            else:
                buf.rewards[t] = self.reward_scaler(i, rewards[:, i], term | trunc, valid)
        self._ep_return += rewards
        self._ep_length += step.active.any(axis=1)
        if step.episode_end.any():
            self._finish_episodes(step.episode_end)

    def _finish_episodes(self, ended: np.ndarray) -> None:
        for e in np.flatnonzero(ended):
            returns = tuple(float(r) for r in self._ep_return[e])
            team_return, length = float(self._ep_return[e].sum()), int(self._ep_length[e])
            self.stats.add(team_return, length)
            self.agent_returns.add(returns)
            self.finished.append(Episode(team_return, length, returns))
        self._ep_return[ended] = 0.0
        self._ep_length[ended] = 0
