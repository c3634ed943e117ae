"""Planning on a known model: value iteration and policy iteration.

Both solve a :class:`fleetmind.envs.finite_mdp.FiniteMDP` for the optimal values
``V*`` and a greedy optimal policy. One sweep of value iteration is the Bellman
optimality update for every state at once::

    Q(s, a) = R(s, a) + gamma * sum_s' P(s'|s,a) V(s')      # one sparse product
    V(s)    = max_a Q(s, a)

and stops when the Bellman residual ``max_s |V_new(s) - V(s)|`` falls below
``tol`` (the values are then within ``tol * gamma / (1 - gamma)`` of ``V*``) or
after ``max_iterations`` sweeps. Policy iteration alternates exact evaluation
(a linear solve of ``(I - gamma P_pi) V = R_pi``) with greedy improvement.

    >>> from fleetmind.envs.finite_mdp import from_gymnasium
    >>> result = value_iteration(from_gymnasium("FrozenLake-v1"), PlanningConfig(gamma=0.99))
    >>> result.values[0], result.policy[0], result.iterations, result.residual
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from fleetmind.core.errors import ConfigError
from fleetmind.envs.finite_mdp import FiniteMDP

log = logging.getLogger(__name__)

_DENSE_SOLVE_LIMIT = 5000


@dataclass
class PlanningConfig:
    """Settings of value iteration and policy iteration."""

    gamma: float = 0.99
    """Discount factor in [0, 1]; 1 is allowed for episodic MDPs whose optimal policy ends."""
    tol: float = 1e-8
    """Stop when the Bellman residual max_s |V_new(s) - V(s)| is below this."""
    max_iterations: int = 100_000
    """Cap on sweeps (value iteration) or improvement steps (policy iteration)."""

    def validate(self) -> None:
        """Raise ConfigError for settings outside their ranges."""
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma must be in [0, 1], got {self.gamma}")
        if not self.tol > 0.0:
            raise ConfigError(f"tol must be positive, got {self.tol}")
        if self.max_iterations < 1:
            raise ConfigError(f"max_iterations must be at least 1, got {self.max_iterations}")


@dataclass
class PlanningResult:
    """What a planner found."""

    values: np.ndarray
    """State values, ``float64 [S]``."""
    policy: np.ndarray
    """Greedy action of each state, ``int64 [S]``."""
    q_values: np.ndarray
    """Action values, ``float64 [S, A]``."""
    iterations: int
    """Sweeps (value iteration) or improvement steps (policy iteration) performed."""
    residual: float
    """Final Bellman residual ``max_s |max_a Q(s, a) - V(s)|``."""
    converged: bool
    """True if the residual fell below ``tol`` before the iteration cap."""


def bellman_q(mdp: FiniteMDP, values: np.ndarray, gamma: float) -> np.ndarray:
    """``Q(s, a) = R(s, a) + gamma * sum_s' P(s'|s,a) V(s')``, ``[S, A]``."""
    return mdp.rewards + gamma * mdp.expected_next_values(values)


def value_iteration(
    mdp: FiniteMDP, config: PlanningConfig, initial: np.ndarray | None = None
) -> PlanningResult:
    """Iterate the Bellman optimality update until the residual is below ``config.tol``."""
    config.validate()
    values = np.zeros(mdp.num_states) if initial is None else initial.astype(np.float64)
    residual = float("inf")
    iterations = 0
    converged = False
    while iterations < config.max_iterations and not converged:
        q = bellman_q(mdp, values, config.gamma)
        new_values = q.max(axis=1)
        residual = float(np.max(np.abs(new_values - values)))
        values = new_values
        iterations += 1
        converged = residual < config.tol
    q = bellman_q(mdp, values, config.gamma)
    residual = float(np.max(np.abs(q.max(axis=1) - values)))
    if not converged:
        log.warning(
            "value iteration stopped at the cap of %d sweeps with residual %.3g > tol %.3g",
            iterations,
            residual,
            config.tol,
        )
    return PlanningResult(values, q.argmax(axis=1), q, iterations, residual, converged)


def evaluate_policy(mdp: FiniteMDP, policy: np.ndarray, gamma: float) -> np.ndarray:
    """Exact values of a deterministic policy: solve ``(I - gamma P_pi) V = R_pi``."""
    r_pi = mdp.rewards[np.arange(mdp.num_states), policy]
    if mdp.num_states > _DENSE_SOLVE_LIMIT:
        raise ConfigError(
            f"policy iteration solves a dense {mdp.num_states}x{mdp.num_states} system; "
            f"use value iteration for MDPs above {_DENSE_SOLVE_LIMIT} states"
        )
    system = np.eye(mdp.num_states) - gamma * mdp.policy_matrix(policy)
    try:
        return np.asarray(np.linalg.solve(system, r_pi), dtype=np.float64)
    except np.linalg.LinAlgError as exc:
        raise ConfigError(
            "policy evaluation is singular: with gamma = 1 some policy never ends an "
            "episode; use gamma < 1 or value iteration"
        ) from exc


def policy_iteration(mdp: FiniteMDP, config: PlanningConfig) -> PlanningResult:
    """Alternate exact evaluation and greedy improvement until the policy is stable."""
    config.validate()
    policy = np.zeros(mdp.num_states, dtype=np.int64)
    values = np.zeros(mdp.num_states)
    iterations = 0
    stable = False
    while iterations < config.max_iterations and not stable:
        values = evaluate_policy(mdp, policy, config.gamma)
        q = bellman_q(mdp, values, config.gamma)
        best = q.max(axis=1)
        # Keep the current action on ties so that the loop cannot cycle.
        current = q[np.arange(mdp.num_states), policy]
        improve = best > current + config.tol
        stable = not bool(improve.any())
        policy = np.where(improve, q.argmax(axis=1), policy)
        iterations += 1
    q = bellman_q(mdp, values, config.gamma)
    residual = float(np.max(np.abs(q.max(axis=1) - values)))
    return PlanningResult(values, q.argmax(axis=1), q, iterations, residual, stable)
