"""V-trace off-policy targets (Espeholt et al., 2018, IMPALA), for ``[T, E]`` arrays.

With importance ratios ``rho_t = pi(a_t|x_t) / mu(a_t|x_t)`` of the learner's
policy ``pi`` against the actor's behaviour policy ``mu``::

    delta_t = min(rho_bar, rho_t) * (r_t + gamma * V(x_{t+1}) - V(x_t))
    v_t     = V(x_t) + delta_t + gamma * min(c_bar, rho_t) * (v_{t+1} - V(x_{t+1}))
    A_t     = min(rho_bar, rho_t) * (r_t + gamma * v_{t+1} - V(x_t))     (policy gradient)

A terminal step does not bootstrap; the recursion stops at every episode end
(terminated or truncated) and, at the end of the chunk, bootstraps from the value
of the next observation.
"""

from __future__ import annotations

import numpy as np


def vtrace(
    log_rhos: np.ndarray,
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(v_s targets, policy-gradient advantages)``, both ``[T, E]`` float32.

    ``next_values[t]`` is ``V(x_{t+1})``: the value of the observation after step ``t``.
    """
    rhos = np.exp(log_rhos.astype(np.float64))
    clipped_rhos = np.minimum(rho_bar, rhos)
    cs = np.minimum(c_bar, rhos)
    not_terminal = 1.0 - terminated.astype(np.float64)
    continues = 1.0 - (terminated | truncated).astype(np.float64)
    discounts = gamma * not_terminal
    deltas = clipped_rhos * (rewards + discounts * next_values - values)
    correction = np.zeros_like(deltas)
    acc = np.zeros(rewards.shape[1], dtype=np.float64)
    for t in range(rewards.shape[0] - 1, -1, -1):
        acc = deltas[t] + gamma * cs[t] * continues[t] * acc
        correction[t] = acc
    vs = values + correction
    vs_next = np.where(continues > 0, np.roll(vs, -1, axis=0), next_values)
    vs_next[-1] = next_values[-1]
    advantages = clipped_rhos * (rewards + discounts * vs_next - values)
    return vs.astype(np.float32), advantages.astype(np.float32)
