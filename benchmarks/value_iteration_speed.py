"""Time one value-iteration sweep on a random 10,000-state, 8-action MDP.

Compares fleetmind's sparse sweep with a plain-Python loop over the same
successor lists and with numpy's dense optimum (one dense matrix-vector product
per action, ``P_a @ V``, the matrices built beforehand and not timed).

    .venv/bin/python benchmarks/value_iteration_speed.py [--states 10000] [--actions 8]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import numpy as np

from fleetmind.algos.tabular.planning import bellman_q
from fleetmind.envs.finite_mdp import FiniteMDP, random_mdp


def time_it(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """Median seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def python_sweep(mdp: FiniteMDP, values: list[float], gamma: float) -> list[float]:
    """The textbook double loop, over per-(s, a) successor lists."""
    succ = python_sweep.successors  # type: ignore[attr-defined]
    rewards = python_sweep.rewards  # type: ignore[attr-defined]
    new = [0.0] * mdp.num_states
    for s in range(mdp.num_states):
        best = -float("inf")
        for a in range(mdp.num_actions):
            total = rewards[s][a]
            for nxt, p in succ[s * mdp.num_actions + a]:
                total += gamma * p * values[nxt]
            best = max(best, total)
        new[s] = best
    return new


def _column_product(q: np.ndarray, a: int, dense: np.ndarray, values: np.ndarray):  # type: ignore[no-untyped-def]
    def product() -> None:
        q[:, a] = dense @ values

    return product


def dense_sweep_seconds(mdp: FiniteMDP, values: np.ndarray, gamma: float, repeats: int) -> float:
    """Sum over actions of the median time of one dense ``P_a @ V`` (plus the max)."""
    total = 0.0
    q = np.empty((mdp.num_states, mdp.num_actions))
    actions = mdp.rows % mdp.num_actions
    states = mdp.rows // mdp.num_actions
    for a in range(mdp.num_actions):
        dense = np.zeros((mdp.num_states, mdp.num_states))
        mask = actions == a
        np.add.at(dense, (states[mask], mdp.next_states[mask]), mdp.probs[mask])
        total += time_it(_column_product(q, a, dense, values), repeats)
        del dense
        gc.collect()
    total += time_it(lambda: (mdp.rewards + gamma * q).max(axis=1), repeats)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=10_000)
    parser.add_argument("--actions", type=int, default=8)
    parser.add_argument("--branching", type=int, default=10, help="successors per (s, a)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    gamma = 0.99
    mdp = random_mdp(args.states, args.actions, args.branching, seed=0)
    values = np.random.default_rng(1).standard_normal(args.states)

    ours = time_it(lambda: bellman_q(mdp, values, gamma).max(axis=1), args.repeats)

    succ: list[list[tuple[int, float]]] = [[] for _ in range(args.states * args.actions)]
    for row, nxt, p in zip(
        mdp.rows.tolist(), mdp.next_states.tolist(), mdp.probs.tolist(), strict=True
    ):
        succ[row].append((nxt, p))
    python_sweep.successors = succ  # type: ignore[attr-defined]
    python_sweep.rewards = mdp.rewards.tolist()  # type: ignore[attr-defined]
    listed = values.tolist()
    plain = time_it(lambda: python_sweep(mdp, listed, gamma), max(1, args.repeats // 2))
    check = np.asarray(python_sweep(mdp, listed, gamma))
    if not np.allclose(check, bellman_q(mdp, values, gamma).max(axis=1)):
        raise SystemExit("plain-Python sweep disagrees with fleetmind's")

    dense = dense_sweep_seconds(mdp, values, gamma, args.repeats)
    print(
        f"random MDP: {args.states} states, {args.actions} actions, "
        f"{args.branching} successors per (s, a), gamma {gamma}"
    )
    print(f"fleetmind sparse sweep : {ours * 1e3:9.2f} ms")
    print(f"plain-Python loop      : {plain * 1e3:9.2f} ms   ({plain / ours:7.1f}x slower)")
    print(f"numpy dense optimum    : {dense * 1e3:9.2f} ms   ({dense / ours:7.1f}x slower)")


if __name__ == "__main__":
    main()
