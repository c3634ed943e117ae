"""A Gymnasium vector env as a team of one agent.

Training speaks one environment interface with an agent axis
(:class:`~fleetmind.envs.team.MultiAgentStep`); this adapter puts a Gymnasium
vector env behind it without changing a number::

    team = GymTeamEnv(make_vector_env("CartPole-v1", 8), "CartPole-v1")
    step = team.reset(seed=0)          # step.obs[0]: [8, 4] float32
    step = team.step([actions])        # step.rewards: [8, 1], float64 as the env gave

Observations keep their shape (no flattening) and are copied out of the vector env
(which may reuse its buffer on the next step), rewards keep the env's float64, and
Gymnasium's next-step autoreset maps to the team fields: the step after an episode
ends resets its copy (``reset_now``), ignores its action and is not ``active``. An
env whose info carries ``decision`` (one flag per copy; ``_decision`` says which
copies reported it) marks observations where the next action can change nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fleetmind.core.errors import EnvironmentStepError
from fleetmind.envs.spaces import vector_spaces
from fleetmind.envs.team import MultiAgentSpec, MultiAgentStep

AGENT = "agent"
"""The name of the one agent of a single-agent environment."""


class GymTeamEnv:
    """``E`` copies of a single-agent Gymnasium env, seen as a team of one."""

    def __init__(self, env: Any, env_id: str) -> None:
        self.env = env
        self.env_id = env_id
        self.num_envs = int(env.num_envs)
        obs_space, act_space = vector_spaces(env)
        self.spec = MultiAgentSpec((AGENT,), (obs_space,), (act_space,), None)
        self.agents = self.spec.agents
        self.num_agents = 1
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._reports_decisions = False

    def reset(self, seed: int | None = None) -> MultiAgentStep:
        """Reset every copy (Gymnasium seeds copy ``e`` with ``seed + e``)."""
        obs, info = self.env.reset(seed=seed)
        e = self.num_envs
        self._autoreset = np.zeros(e, dtype=bool)
        return MultiAgentStep(
            obs=[np.array(obs, dtype=np.float32)],
            rewards=np.zeros((e, 1), np.float64),
            terminated=np.zeros((e, 1), bool),
            truncated=np.zeros((e, 1), bool),
            active=np.zeros((e, 1), bool),
            reset_now=np.ones(e, bool),
            episode_end=np.zeros(e, bool),
            state=None,
            decision=self._decisions(info),
        )

    def step(self, actions: Sequence[np.ndarray]) -> MultiAgentStep:
        """Apply the one agent's ``[E, ...]`` actions to every copy."""
        if len(actions) != 1:
            raise EnvironmentStepError(
                f"environment {self.env_id} has one agent; got actions for {len(actions)}"
            )
        obs, reward, term, trunc, info = self.env.step(actions[0])
        active = ~self._autoreset
        term = np.asarray(term, dtype=bool) & active
        trunc = np.asarray(trunc, dtype=bool) & active
        end = term | trunc
        out = MultiAgentStep(
            obs=[np.array(obs, dtype=np.float32)],
            rewards=np.asarray(reward, dtype=np.float64)[:, None],
            terminated=term[:, None],
            truncated=trunc[:, None],
            active=active[:, None],
            reset_now=self._autoreset,
            episode_end=end,
            state=None,
            decision=self._decisions(info),
        )
        self._autoreset = end
        return out

    def _decisions(self, info: Any) -> np.ndarray | None:
        """``info["decision"]`` as ``[E, 1]`` (copies that did not report it decide)."""
        if not isinstance(info, dict) or "decision" not in info:
            if not self._reports_decisions:
                return None
            return np.ones((self.num_envs, 1), dtype=bool)
        flags = np.asarray(info["decision"])
        if flags.shape != (self.num_envs,):
            raise EnvironmentStepError(
                f"environment {self.env_id} returned info['decision'] of shape "
                f"{list(flags.shape)}; expected one flag per copy, [{self.num_envs}]"
            )
        self._reports_decisions = True
        present = np.asarray(info.get("_decision", True), dtype=bool)
        decisions: np.ndarray = (flags.astype(bool) | ~present)[:, None]
        return decisions

    def close(self) -> None:
        """Close the vector env."""
        self.env.close()
