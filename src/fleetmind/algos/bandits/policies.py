"""Multi-armed bandits: epsilon-greedy, UCB1 and Thompson sampling, usable online.

Every agent follows the same two-call loop, so a service can keep one and feed
it as rewards arrive::

    agent = make_bandit(BanditConfig(algo="ucb1", num_arms=3))
    arm = agent.choose()          # which arm to pull now
    agent.update(arm, reward)     # what it paid

``state_dict()`` / ``load_bandit(state)`` save and restore an agent as plain JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from fleetmind.config import config_from_mapping
from fleetmind.core.errors import ConfigError, InvalidInputError

BanditAlgo = Literal["epsilon-greedy", "ucb1", "thompson-bernoulli", "thompson-gaussian"]
BANDIT_ALGOS: tuple[str, ...] = (
    "epsilon-greedy",
    "ucb1",
    "thompson-bernoulli",
    "thompson-gaussian",
)


@dataclass
class BanditConfig:
    """Which bandit agent to build and its settings."""

    algo: BanditAlgo = "ucb1"
    """epsilon-greedy, ucb1, thompson-bernoulli (rewards in [0, 1]) or thompson-gaussian."""
    num_arms: int = 10
    """Number of arms."""
    epsilon: float = 0.1
    """Exploration probability of epsilon-greedy."""
    ucb_c: float = math.sqrt(2.0)
    """Exploration weight of UCB1: mean + c * sqrt(ln t / n)."""
    prior_mean: float = 0.0
    """Prior mean of each arm's reward (thompson-gaussian)."""
    prior_std: float = 1.0
    """Prior standard deviation of each arm's mean reward (thompson-gaussian)."""
    noise_std: float = 1.0
    """Assumed standard deviation of rewards around their mean (thompson-gaussian)."""
    seed: int = 0
    """Seed of the agent's random choices."""

    def validate(self) -> None:
        """Raise ConfigError for settings outside their ranges."""
        if self.num_arms < 1:
            raise ConfigError(f"num_arms must be at least 1, got {self.num_arms}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ConfigError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if self.ucb_c < 0.0:
            raise ConfigError(f"ucb_c must not be negative, got {self.ucb_c}")
        if self.prior_std <= 0.0 or self.noise_std <= 0.0:
            raise ConfigError("prior_std and noise_std must be positive")
        if self.algo not in BANDIT_ALGOS:
            raise ConfigError(f"unknown bandit {self.algo!r}; choose one of {BANDIT_ALGOS}")


class BanditAgent:
    """Counts and sample means per arm; subclasses decide how to choose."""

    def __init__(self, config: BanditConfig) -> None:
        config.validate()
        self.config = config
        self.num_arms = config.num_arms
        self.counts = np.zeros(config.num_arms, dtype=np.int64)
        self.means = np.zeros(config.num_arms, dtype=np.float64)
        self.rng = np.random.default_rng(config.seed)

    @property
    def steps(self) -> int:
        """Rewards observed so far."""
        return int(self.counts.sum())

    def choose(self) -> int:
        """The arm to pull next."""
        raise NotImplementedError

    def update(self, arm: int, reward: float) -> None:
        """Learn from the reward ``arm`` paid."""
        if (
            isinstance(arm, bool)
            or not isinstance(arm, int | np.integer)
            or not (0 <= arm < self.num_arms)
        ):
            raise InvalidInputError(
                f"arm must be an integer in [0, {self.num_arms - 1}], got {arm!r}"
            )
        if not isinstance(reward, int | float | np.number) or not math.isfinite(float(reward)):
            raise InvalidInputError(f"reward must be a finite number, got {reward!r}")
        self._check_reward(float(reward))
        self.counts[arm] += 1
        self.means[arm] += (float(reward) - self.means[arm]) / self.counts[arm]

    def _check_reward(self, reward: float) -> None:
        """Subclasses reject rewards their model cannot take."""

    def _argmax(self, scores: np.ndarray) -> int:
        best = np.flatnonzero(scores == scores.max())
        return int(best[0] if len(best) == 1 else self.rng.choice(best))

    def state_dict(self) -> dict[str, Any]:
        """A JSON-compatible snapshot (config, counts, means, RNG state)."""
        return {
            "config": asdict(self.config),
            "counts": self.counts.tolist(),
            "means": self.means.tolist(),
            "rng": self.rng.bit_generator.state,
        }


class EpsilonGreedy(BanditAgent):
    """Greedy on sample means; a uniform arm with probability epsilon."""

    def choose(self) -> int:
        if self.rng.random() < self.config.epsilon:
            return int(self.rng.integers(self.num_arms))
        return self._argmax(self.means)


class UCB1(BanditAgent):
    """Each arm once, then ``argmax mean + c * sqrt(ln t / n)`` (Auer et al., 2002)."""

    def choose(self) -> int:
        untried = np.flatnonzero(self.counts == 0)
        if len(untried):
            return int(untried[0])
        bonus = self.config.ucb_c * np.sqrt(math.log(self.steps) / self.counts)
        return self._argmax(self.means + bonus)


class BernoulliThompson(BanditAgent):
    """Beta(1, 1) priors; a reward r in [0, 1] counts as a success with probability r."""

    def _check_reward(self, reward: float) -> None:
        if not 0.0 <= reward <= 1.0:
            raise InvalidInputError(
                f"thompson-bernoulli needs rewards in [0, 1], got {reward}; "
                "use thompson-gaussian for unbounded rewards"
            )

    def choose(self) -> int:
        successes = self.means * self.counts
        samples = self.rng.beta(1.0 + successes, 1.0 + self.counts - successes)
        return self._argmax(samples)


class GaussianThompson(BanditAgent):
    """Normal prior on each arm's mean, normal rewards of known spread (conjugate update)."""

    def choose(self) -> int:
        c = self.config
        precision = 1.0 / c.prior_std**2 + self.counts / c.noise_std**2
        mean = (c.prior_mean / c.prior_std**2 + self.means * self.counts / c.noise_std**2) / (
            precision
        )
        return self._argmax(self.rng.normal(mean, 1.0 / np.sqrt(precision)))


_CLASSES: dict[str, type[BanditAgent]] = {
    "epsilon-greedy": EpsilonGreedy,
    "ucb1": UCB1,
    "thompson-bernoulli": BernoulliThompson,
    "thompson-gaussian": GaussianThompson,
}


def make_bandit(config: BanditConfig) -> BanditAgent:
    """Build the agent ``config.algo`` names."""
    config.validate()
    return _CLASSES[config.algo](config)


def load_bandit(state: dict[str, Any]) -> BanditAgent:
    """Rebuild an agent from :meth:`BanditAgent.state_dict`."""
    try:
        agent = make_bandit(config_from_mapping(BanditConfig, dict(state["config"]), "config"))
        counts = np.asarray(state["counts"], dtype=np.int64)
        means = np.asarray(state["means"], dtype=np.float64)
        if counts.shape != (agent.num_arms,) or means.shape != (agent.num_arms,):
            raise InvalidInputError(f"counts and means must list {agent.num_arms} arms")
        agent.counts, agent.means = counts, means
        agent.rng.bit_generator.state = state["rng"]
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidInputError | ConfigError):
            raise
        raise InvalidInputError(f"malformed bandit state: {exc}") from exc
    return agent
