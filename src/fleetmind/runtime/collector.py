"""Collects ``[T x E]`` trajectories from a vector env with a behaviour policy.

Buffers are allocated once and reused. Observations are standardised with running
statistics before the policy sees them (the statistics update after every step),
rewards optionally scaled, and finished episodes are counted with their raw return.

An environment whose info carries ``decision`` (one flag per copy; Gymnasium's
``_decision`` says which copies reported it) marks observations where the next
action can change nothing; the trajectory's ``decision`` array records them for
the learner. Without that key the trajectory's ``decision`` is None.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fleetmind.core.batch import Trajectory
from fleetmind.core.episodes import EpisodeStats
from fleetmind.core.errors import EnvironmentStepError
from fleetmind.core.learning import RolloutPolicy
from fleetmind.core.normalizer import ObservationNormalizer, RunningMeanStd
from fleetmind.core.spaces import SpaceSpec


class RolloutCollector:
    """Steps a vector env with a policy and returns trajectories of ``num_steps``."""

    def __init__(
        self,
        env: Any,
        env_id: str,
        observation_space: SpaceSpec,
        action_space: SpaceSpec,
        num_steps: int,
        actuate: Any,
        obs_stats: RunningMeanStd | None,
        reward_gamma: float | None = None,
        seed: int = 0,
    ) -> None:
        self.env = env
        self.env_id = env_id
        self.num_envs = int(env.num_envs)
        self.num_steps = num_steps
        self.actuate = actuate
        self.obs_stats = obs_stats
        self.normalizer = ObservationNormalizer(obs_stats) if obs_stats is not None else None
        self.reward_gamma = reward_gamma
        self.reward_stats = RunningMeanStd(()) if reward_gamma is not None else None
        self.stats = EpisodeStats()
        self.env_steps = 0
        """Environment steps taken by this collector (all copies)."""
        shape = (num_steps, self.num_envs)
        self._obs = np.zeros(shape + observation_space.shape, dtype=np.float32)
        self._rew = np.zeros(shape, dtype=np.float32)
        self._logp = np.zeros(shape, dtype=np.float32)
        self._val = np.zeros(shape, dtype=np.float32)
        self._next_val = np.zeros(shape, dtype=np.float32)
        self._term = np.zeros(shape, dtype=bool)
        self._trunc = np.zeros(shape, dtype=bool)
        self._valid = np.zeros(shape, dtype=bool)
        self._decision = np.ones(shape, dtype=bool)
        self._reports_decisions = False
        self._next_decision = np.ones(self.num_envs, dtype=bool)
        if action_space.kind == "discrete":
            self._actions = np.zeros(shape, dtype=np.int64)
        else:
            self._actions = np.zeros((*shape, action_space.flat_dim), dtype=np.float32)
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self._disc_return = np.zeros(self.num_envs, dtype=np.float64)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        obs, info = env.reset(seed=seed)
        self._raw_obs = self._checked(obs)
        self._read_decisions(info)
        if self.obs_stats is not None:
            self.obs_stats.update(self._raw_obs)

    def _checked(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        if not np.all(np.isfinite(obs)):
            bad = np.unique(np.argwhere(~np.isfinite(obs.reshape(self.num_envs, -1)))[:, 0])
            raise EnvironmentStepError(
                f"environment {self.env_id} returned a NaN or infinite observation at env "
                f"step {self.env_steps} (copies {bad.tolist()}); check the environment"
            )
        return obs

    def _read_decisions(self, info: Any) -> None:
        """Keep ``info["decision"]`` (for the next action) when the env reports it."""
        if not isinstance(info, dict) or "decision" not in info:
            self._next_decision.fill(True)
            return
        flags = np.asarray(info["decision"])
        if flags.shape != (self.num_envs,):
            raise EnvironmentStepError(
                f"environment {self.env_id} returned info['decision'] of shape "
                f"{list(flags.shape)}; expected one flag per copy, [{self.num_envs}]"
            )
        present = np.asarray(info.get("_decision", True), dtype=bool)
        self._next_decision = flags.astype(bool) | ~present
        self._reports_decisions = True

    def _model_input(self, raw: np.ndarray) -> np.ndarray:
        return self.normalizer(raw) if self.normalizer is not None else raw

    def collect(self, policy: RolloutPolicy, policy_version: int = 0) -> Trajectory:
        """Run ``num_steps`` vector steps and return them as a trajectory."""
        for t in range(self.num_steps):
            model_in = self._model_input(self._raw_obs)
            out = policy.step(model_in)
            self._obs[t] = model_in
            self._actions[t] = out.actions
            self._logp[t] = out.log_probs
            self._val[t] = out.values
            if t > 0:
                self._next_val[t - 1] = out.values
            self._decision[t] = self._next_decision
            obs, reward, term, trunc, info = self.env.step(self.actuate(out.actions))
            self.env_steps += self.num_envs
            self._raw_obs = self._checked(obs)
            self._read_decisions(info)
            self._record(t, np.asarray(reward, dtype=np.float64), term, trunc)
        self._next_val[-1] = policy.step(self._model_input(self._raw_obs)).values
        return Trajectory(
            obs=self._obs.copy(),
            actions=self._actions.copy(),
            log_probs=self._logp.copy(),
            values=self._val.copy(),
            rewards=self._rew.copy(),
            terminated=self._term.copy(),
            truncated=self._trunc.copy(),
            valid=self._valid.copy(),
            next_values=self._next_val.copy(),
            policy_version=policy_version,
            decision=self._decision.copy() if self._reports_decisions else None,
        )

    def _record(self, t: int, reward: np.ndarray, term: np.ndarray, trunc: np.ndarray) -> None:
        valid = ~self._autoreset
        reward = np.where(valid, reward, 0.0)
        done = (np.asarray(term) | np.asarray(trunc)) & valid
        self._valid[t] = valid
        self._term[t] = np.asarray(term) & valid
        self._trunc[t] = np.asarray(trunc) & valid
        self._ep_return += reward
        self._ep_length += valid
        for i in np.flatnonzero(done):
            self.stats.add(float(self._ep_return[i]), int(self._ep_length[i]))
        self._ep_return[done] = 0.0
        self._ep_length[done] = 0
        self._rew[t] = self._scaled(reward, done, valid)
        self._autoreset = done
        if self.obs_stats is not None:
            self.obs_stats.update(self._raw_obs)

    def _scaled(self, reward: np.ndarray, done: np.ndarray, valid: np.ndarray) -> np.ndarray:
        if self.reward_stats is None or self.reward_gamma is None:
            return reward.astype(np.float32)
        self._disc_return = self._disc_return * self.reward_gamma + reward
        self.reward_stats.update(self._disc_return[valid])
        self._disc_return[done] = 0.0
        return (reward / np.sqrt(self.reward_stats.var + 1e-8)).astype(np.float32)
