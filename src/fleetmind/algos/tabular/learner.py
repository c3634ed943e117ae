"""Tabular Q-learning and SARSA as learners of the shared trainer.

``fleetmind train FrozenLake-v1 --algo q_learning`` (or ``--algo sarsa``) keeps a
table ``Q[s, a]`` in the run's checkpoints and is evaluated and served like any
other agent. Discrete observations reach the learner one-hot encoded (the envs
layer flattens them); the state index is the position of the one.

The behaviour policy is epsilon-greedy, epsilon falling linearly over
``exploration_steps`` env steps. It reports as each step's value the bootstrap
term of the method, so that the trajectory's ``next_values`` hold the target's
second half, computed with the table as it was when the next action was chosen::

    Q-learning:  value(s) = max_a Q(s, a)         target = r + gamma * max_a' Q(s', a')
    SARSA:       value(s) = Q(s, a chosen)        target = r + gamma * Q(s', a')
    Q(s, a) += learning_rate * (target - Q(s, a))    (no bootstrap after a terminal step)

With ``rollout_steps = 1`` (the default) the table is updated after every vector
step, which is exactly the textbook update.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from fleetmind.algos.base import AlgoSpec
from fleetmind.algos.tabular.config import TabularLearnerConfig
from fleetmind.core.agent import Decision
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import ConfigError, InvalidInputError
from fleetmind.core.learning import StepOutput
from fleetmind.core.spaces import SpaceSpec


def _num_states(space: SpaceSpec, algo: str) -> int:
    one_hot = (
        space.kind == "box"
        and len(space.shape) == 1
        and space.low is not None
        and space.high is not None
        and all(v == 0.0 for v in space.low)
        and all(v == 1.0 for v in space.high)
    )
    if not one_hot:
        raise ConfigError(
            f"{algo} needs a Discrete observation space (FrozenLake-v1, Taxi-v4, "
            f"CliffWalking-v1, ...); this environment's observations are a box of shape "
            f"{list(space.shape)}. Use --algo ppo or dqn."
        )
    return int(space.shape[0])


class TabularLearner:
    """A Q-table with epsilon-greedy behaviour; one update per trajectory."""

    def __init__(
        self,
        config: TabularLearnerConfig,
        observation_space: SpaceSpec,
        action_space: SpaceSpec,
        seed: int,
        sarsa: bool,
    ) -> None:
        config.validate()
        name = "sarsa" if sarsa else "q_learning"
        if action_space.kind != "discrete":
            raise ConfigError(f"{name} needs a Discrete action space; use --algo ppo")
        self.config = config
        self.sarsa = sarsa
        self.q_table = torch.zeros(_num_states(observation_space, name), int(action_space.n or 0))
        self.q = self.q_table.numpy()  # a view: updates show in the checkpointed tensor
        self.rng = np.random.default_rng(seed)
        self.version = 0
        self.env_steps = 0
        self.total_env_steps: int | None = None

    def epsilon(self) -> float:
        """Current exploration probability."""
        cfg = self.config
        frac = min(1.0, self.env_steps / cfg.exploration_steps)
        return cfg.epsilon_start + frac * (cfg.epsilon_end - cfg.epsilon_start)

    def states(self, model_input: np.ndarray) -> np.ndarray:
        """State indices of one-hot rows; InvalidInputError if a row is not one-hot."""
        rows = np.asarray(model_input)
        if rows.ndim != 2 or rows.shape[1] != self.q.shape[0] or np.any(rows.sum(axis=1) != 1):
            raise InvalidInputError(
                f"expected one-hot rows of length {self.q.shape[0]}, got shape {list(rows.shape)}"
            )
        index: np.ndarray = np.argmax(rows, axis=1)
        return index

    def rollout_policy(self) -> TabularRolloutPolicy:
        """Epsilon-greedy behaviour reading the live table."""
        return TabularRolloutPolicy(self)

    def inference_policy(self) -> TabularPolicy:
        """Greedy policy for evaluation and serving."""
        return TabularPolicy(self)

    def update(self, trajectory: Trajectory) -> dict[str, float]:
        """Move Q toward the one-step targets of every valid transition, in order."""
        cfg = self.config
        errors = []
        for t in range(trajectory.num_steps):
            states = self.states(trajectory.obs[t])
            for i in np.flatnonzero(trajectory.valid[t]):
                s, a = states[i], int(trajectory.actions[t, i])
                bootstrap = 0.0 if trajectory.terminated[t, i] else trajectory.next_values[t, i]
                error = trajectory.rewards[t, i] + cfg.gamma * bootstrap - self.q[s, a]
                self.q[s, a] += cfg.learning_rate * error
                errors.append(abs(float(error)))
        self.version += 1
        self.env_steps += int(trajectory.valid.size)
        return {
            "td_error": float(np.mean(errors)) if errors else 0.0,
            "epsilon": self.epsilon(),
        }

    def state_dict(self) -> dict[str, Any]:
        """The table, counters and the exploration RNG."""
        return {
            "q": self.q_table,
            "version": self.version,
            "env_steps": self.env_steps,
            "rng": json.dumps(self.rng.bit_generator.state),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        table = state["q"]
        if tuple(table.shape) != tuple(self.q_table.shape):
            raise ConfigError(
                f"Q-table has shape {list(table.shape)}, expected {list(self.q.shape)}"
            )
        self.q_table.copy_(table)
        self.version = int(state.get("version", 0))
        self.env_steps = int(state.get("env_steps", 0))
        if "rng" in state:
            self.rng.bit_generator.state = json.loads(state["rng"])


class TabularRolloutPolicy:
    """Epsilon-greedy actions; the value is the method's bootstrap term."""

    def __init__(self, learner: TabularLearner) -> None:
        self.learner = learner

    def step(self, model_input: np.ndarray) -> StepOutput:
        """Actions for ``[E, n_states]`` one-hot inputs."""
        learner = self.learner
        states = learner.states(model_input)
        rows = learner.q[states]
        greedy = np.argmax(rows, axis=1)
        explore = learner.rng.random(len(states)) < learner.epsilon()
        random_actions = learner.rng.integers(0, rows.shape[1], size=len(states))
        actions = np.where(explore, random_actions, greedy)
        values = rows[np.arange(len(states)), actions] if learner.sarsa else rows.max(axis=1)
        zeros = np.zeros(len(states), dtype=np.float32)
        return StepOutput(actions.astype(np.int64), zeros, values.astype(np.float32))


class TabularPolicy:
    """Greedy actions with the Q-values of the state as outputs."""

    def __init__(self, learner: TabularLearner) -> None:
        self.learner = learner

    @property
    def output_specs(self) -> dict[str, tuple[int, ...]]:
        """Per-row shapes of the outputs."""
        return {"q_values": (int(self.learner.q.shape[1]),), "value": ()}

    def decide(self, model_input: np.ndarray, deterministic: bool = True) -> Decision:
        """Greedy (or epsilon-greedy when not deterministic) actions for one-hot inputs."""
        rows = self.learner.q[self.learner.states(model_input)].astype(np.float32)
        if deterministic:
            actions = np.argmax(rows, axis=1).astype(np.int64)
        else:
            actions = TabularRolloutPolicy(self.learner).step(model_input).actions
        return Decision(actions, {"q_values": rows, "value": rows.max(axis=1)})


def supports_action(space: SpaceSpec) -> str | None:
    """Only discrete action spaces."""
    if space.kind == "discrete":
        return None
    return "tabular methods need a Discrete action space; use --algo ppo"


def make_spec(name: str, sarsa: bool) -> AlgoSpec:
    """The registry entry of Q-learning or SARSA."""

    def build(config: Any, obs: SpaceSpec, act: SpaceSpec, seed: int) -> TabularLearner:
        return TabularLearner(config, obs, act, seed, sarsa=sarsa)

    summary = "tabular SARSA (on-policy)" if sarsa else "tabular Q-learning (off-policy)"
    return AlgoSpec(
        name=name,
        summary=f"{summary}, epsilon-greedy, for Discrete observations and actions",
        config_cls=TabularLearnerConfig,
        build=build,
        rollout_length=lambda cfg: int(cfg.rollout_steps),
        supports_action=supports_action,
    )
