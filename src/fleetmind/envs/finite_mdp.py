"""Finite MDPs as transition tables: from Gymnasium toy-text envs, JSON files or at random.

A :class:`FiniteMDP` stores ``P(s'|s,a)`` sparsely, one entry per possible outcome,
and the expected immediate reward ``R(s,a)``. Outcomes that end the episode
(``terminal``) contribute their reward but no continuation value, exactly like a
Gymnasium episode that terminates there.

The JSON file format (``fleetmind solve-mdp FILE.json``)::

    {
      "num_states": 2,
      "num_actions": 2,
      "transitions": [                      # one list per state ...
        [                                   # ... of one list per action ...
          [{"prob": 1.0, "next_state": 1, "reward": 0.0}],       # ... of outcomes
          [{"prob": 0.5, "next_state": 0, "reward": 1.0},
           {"prob": 0.5, "next_state": 1, "reward": 0.0, "terminal": true}]
        ],
        [
          [{"prob": 1.0, "next_state": 1, "reward": 0.0, "terminal": true}],
          [{"prob": 1.0, "next_state": 0, "reward": -1.0}]
        ]
      ],
      "state_names": ["start", "end"],      # optional
      "action_names": ["stay", "move"]      # optional
    }

Every state lists every action; each action has at least one outcome; ``prob``
is in ``[0, 1]`` and the probabilities of one action sum to 1; ``terminal``
defaults to false. Errors name the offending field, e.g.
``transitions[1][0][0].next_state``.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fleetmind.core.errors import ConfigError, InvalidInputError, NotFoundError

_PROB_TOLERANCE = 1e-6


@dataclass(frozen=True)
class FiniteMDP:
    """A finite MDP with sparse transitions and expected rewards."""

    num_states: int
    """Number of states ``S``."""
    num_actions: int
    """Number of actions ``A`` (every action is available in every state)."""
    rows: np.ndarray
    """Flat ``s * A + a`` index of each continuing outcome, ``int64 [nnz]``."""
    next_states: np.ndarray
    """Next state of each continuing outcome, ``int64 [nnz]``."""
    probs: np.ndarray
    """Probability of each continuing outcome, ``float64 [nnz]``."""
    rewards: np.ndarray
    """Expected immediate reward ``R(s, a)``, ``float64 [S, A]``."""
    name: str = "mdp"
    """Where the MDP came from (env id or file name)."""

    def __post_init__(self) -> None:
        # A padded [S*A, K] layout (K = most successors of any pair) turns the sweep
        # into one gather and one row-wise dot product; kept when padding is cheap.
        pairs = self.num_states * self.num_actions
        counts = np.bincount(self.rows, minlength=pairs)
        width = int(counts.max()) if len(self.rows) else 0
        padded: tuple[np.ndarray, np.ndarray] | None = None
        if width and pairs * width <= 2 * len(self.rows) + pairs:
            order = np.argsort(self.rows, kind="stable")
            rows = self.rows[order]
            slot = np.arange(len(rows)) - (np.cumsum(counts) - counts)[rows]
            nexts = np.zeros((pairs, width), dtype=np.int64)
            probs = np.zeros((pairs, width))
            nexts[rows, slot] = self.next_states[order]
            probs[rows, slot] = self.probs[order]
            padded = (nexts, probs)
        object.__setattr__(self, "_padded", padded)

    def expected_next_values(self, values: np.ndarray) -> np.ndarray:
        """``sum_s' P(s'|s,a) V(s')`` for every ``(s, a)``, ``[S, A]`` (terminal mass is 0)."""
        padded: tuple[np.ndarray, np.ndarray] | None = getattr(self, "_padded", None)
        if padded is not None:
            nexts, probs = padded
            dot = np.einsum("ij,ij->i", probs, values[nexts])
            return np.asarray(dot).reshape(self.num_states, self.num_actions)
        flat = np.bincount(
            self.rows,
            weights=self.probs * values[self.next_states],
            minlength=self.num_states * self.num_actions,
        )
        return flat.reshape(self.num_states, self.num_actions)

    def policy_matrix(self, policy: np.ndarray) -> np.ndarray:
        """Dense ``P_pi[s, s']`` of a deterministic policy (for exact evaluation)."""
        chosen = np.arange(self.num_states) * self.num_actions + policy
        keep = np.zeros(self.num_states * self.num_actions, dtype=bool)
        keep[chosen] = True
        mask = keep[self.rows]
        dense = np.zeros((self.num_states, self.num_states))
        np.add.at(
            dense, (self.rows[mask] // self.num_actions, self.next_states[mask]), self.probs[mask]
        )
        return dense


def from_outcomes(
    outcomes: Sequence[Sequence[Sequence[tuple[float, int, float, bool]]]],
    name: str = "mdp",
) -> FiniteMDP:
    """Build from ``outcomes[s][a] = [(prob, next_state, reward, terminal), ...]``.

    Raises :class:`InvalidInputError` naming ``transitions[s][a][k].field`` when an
    entry does not fit.
    """
    num_states = len(outcomes)
    if num_states == 0:
        raise InvalidInputError("transitions: the MDP has no states; list at least one")
    num_actions = len(outcomes[0])
    rows: list[int] = []
    nexts: list[int] = []
    probs: list[float] = []
    rewards = np.zeros((num_states, num_actions))
    for s, per_action in enumerate(outcomes):
        if len(per_action) != num_actions:
            raise InvalidInputError(
                f"transitions[{s}] lists {len(per_action)} actions; state 0 lists "
                f"{num_actions} and every state must list every action"
            )
        for a, entries in enumerate(per_action):
            where = f"transitions[{s}][{a}]"
            if len(entries) == 0:
                raise InvalidInputError(f"{where}: action {a} of state {s} has no outcomes")
            total = 0.0
            for k, (prob, nxt, reward, terminal) in enumerate(entries):
                _check_outcome(f"{where}[{k}]", prob, nxt, reward, num_states)
                total += prob
                rewards[s, a] += prob * reward
                if not terminal:
                    rows.append(s * num_actions + a)
                    nexts.append(int(nxt))
                    probs.append(float(prob))
            if abs(total - 1.0) > _PROB_TOLERANCE:
                raise InvalidInputError(
                    f"{where}: probabilities of state {s} action {a} sum to {total:.6g}, not 1"
                )
    return FiniteMDP(
        num_states=num_states,
        num_actions=num_actions,
        rows=np.asarray(rows, dtype=np.int64),
        next_states=np.asarray(nexts, dtype=np.int64),
        probs=np.asarray(probs, dtype=np.float64),
        rewards=rewards,
        name=name,
    )


def _check_outcome(where: str, prob: float, nxt: int, reward: float, num_states: int) -> None:
    if not (isinstance(prob, int | float) and 0.0 <= prob <= 1.0):
        raise InvalidInputError(f"{where}.prob must be a number in [0, 1], got {prob!r}")
    if (
        isinstance(nxt, bool)
        or not isinstance(nxt, int | np.integer)
        or not (0 <= nxt < num_states)
    ):
        raise InvalidInputError(
            f"{where}.next_state must be an integer in [0, {num_states - 1}], got {nxt!r}"
        )
    if not (isinstance(reward, int | float) and math.isfinite(reward)):
        raise InvalidInputError(f"{where}.reward must be a finite number, got {reward!r}")


def from_gymnasium(env_id: str) -> FiniteMDP:
    """The transition model of a Gymnasium env exposing ``env.unwrapped.P`` (toy-text)."""
    import gymnasium as gym

    from fleetmind.envs.registry import resolve_env_id

    resolve_env_id(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of old env versions
        env = gym.make(env_id)
    try:
        table = getattr(env.unwrapped, "P", None)
        n_states = getattr(env.observation_space, "n", None)
        n_actions = getattr(env.action_space, "n", None)
    finally:
        env.close()
    if not isinstance(table, Mapping) or n_states is None or n_actions is None:
        raise ConfigError(
            f"environment {env_id!r} has no transition model (env.unwrapped.P with "
            "discrete spaces); solve-mdp needs a finite MDP such as FrozenLake-v1, "
            "Taxi-v4, CliffWalking-v1 or a JSON file (see docs/algorithms.md)"
        )
    outcomes = [
        [
            [(float(p), int(nxt), float(r), bool(done)) for p, nxt, r, done in table[s][a]]
            for a in range(int(n_actions))
        ]
        for s in range(int(n_states))
    ]
    return from_outcomes(outcomes, name=env_id)


def from_json_dict(data: Any, name: str = "mdp") -> FiniteMDP:
    """Build from the parsed JSON format described in the module docstring."""
    if not isinstance(data, dict):
        raise InvalidInputError("the MDP file must hold one JSON object")
    for key in ("num_states", "num_actions", "transitions"):
        if key not in data:
            raise InvalidInputError(f"the MDP file lacks the required field {key!r}")
    num_states, num_actions = data["num_states"], data["num_actions"]
    for key, value in (("num_states", num_states), ("num_actions", num_actions)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{key} must be a positive integer, got {value!r}")
    table = data["transitions"]
    if not isinstance(table, list) or len(table) != num_states:
        got = len(table) if isinstance(table, list) else type(table).__name__
        raise InvalidInputError(
            f"transitions must be a list of {num_states} states (num_states), got {got}"
        )
    outcomes = []
    for s, per_action in enumerate(table):
        if not isinstance(per_action, list) or len(per_action) != num_actions:
            raise InvalidInputError(
                f"transitions[{s}] must be a list of {num_actions} actions (num_actions)"
            )
        outcomes.append(
            [_parse_entries(f"transitions[{s}][{a}]", e) for a, e in enumerate(per_action)]
        )
    return from_outcomes(outcomes, name=name)


def _parse_entries(where: str, entries: Any) -> list[tuple[float, int, float, bool]]:
    if not isinstance(entries, list):
        raise InvalidInputError(f"{where} must be a list of outcome objects")
    parsed = []
    for k, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidInputError(f"{where}[{k}] must be an object with prob, next_state, reward")
        unknown = set(entry) - {"prob", "next_state", "reward", "terminal"}
        if unknown:
            raise InvalidInputError(f"{where}[{k}] has unknown fields {sorted(unknown)}")
        for key in ("prob", "next_state", "reward"):
            if key not in entry:
                raise InvalidInputError(f"{where}[{k}] lacks the field {key!r}")
        terminal = entry.get("terminal", False)
        if not isinstance(terminal, bool):
            raise InvalidInputError(f"{where}[{k}].terminal must be true or false")
        parsed.append((entry["prob"], entry["next_state"], entry["reward"], terminal))
    return parsed


def load_json(path: Path) -> FiniteMDP:
    """Read an MDP file in the documented JSON format."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotFoundError(f"MDP file {str(path)!r} does not exist") from exc
    except OSError as exc:
        raise InvalidInputError(f"cannot read MDP file {str(path)!r}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"MDP file {str(path)!r} is not UTF-8 text; save it as UTF-8"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"MDP file {str(path)!r} is not valid JSON: {exc}") from exc
    return from_json_dict(data, name=Path(path).name)


def random_mdp(num_states: int, num_actions: int, branching: int, seed: int = 0) -> FiniteMDP:
    """A random (Garnet-style) MDP: each ``(s, a)`` reaches ``branching`` random states."""
    rng = np.random.default_rng(seed)
    pairs = num_states * num_actions
    rows = np.repeat(np.arange(pairs, dtype=np.int64), branching)
    nexts = rng.integers(0, num_states, size=pairs * branching, dtype=np.int64)
    weights = rng.random((pairs, branching)) + 1e-3
    probs = (weights / weights.sum(axis=1, keepdims=True)).reshape(-1)
    rewards = rng.standard_normal((num_states, num_actions))
    return FiniteMDP(num_states, num_actions, rows, nexts, probs, rewards, name="random")
