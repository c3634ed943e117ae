"""One site's work in a round: train K steps from the global weights, or play episodes.

The site trains with the ordinary pieces of a run (:func:`~fleetmind.runtime.parts.build_parts`:
its env variant, the learner, the actuators; the one collector), in this process::

    trainer = SiteTrainer(settings, site=2)
    result = trainer.train(global_weights, server_round=3)   # K env steps of updates
    returns = trainer.evaluate(global_weights, episodes=5, seed=7)

Only the network's weights go in and out (:class:`Weights`, named numpy arrays);
optimizer state and observation statistics stay with the site, and are rebuilt
each round (federated runs do not standardise observations: running statistics
are a summary of the site's data that no clipping or noise would cover).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fleetmind.algos.base import AlgoSpec
from fleetmind.algos.registry import get_algorithm
from fleetmind.algos.team.base import MultiAgentAlgoSpec
from fleetmind.core.agent import Agent, identity
from fleetmind.core.errors import ConfigError
from fleetmind.core.spaces import SpaceSpec
from fleetmind.envs.registry import make_vector_env
from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.sites import draw_site_params
from fleetmind.runtime.local import resolve_algo_config
from fleetmind.runtime.parts import RunParts, broadcast_module, build_parts

Weights = dict[str, np.ndarray]
"""A network's parameters by name (its ``state_dict`` order), as numpy arrays."""
MAX_EPISODE_STEPS = 100_000


def algo_spec(settings: FederationSettings) -> tuple[AlgoSpec, Any]:
    """The algorithm and its default config; ConfigError for a team algorithm."""
    spec = get_algorithm(settings.algo)
    if isinstance(spec, MultiAgentAlgoSpec):
        raise ConfigError(f"--algo {spec.name} trains teams; federated sites train one agent")
    return spec, resolve_algo_config(spec, None)


def default_site_params(settings: FederationSettings) -> list[dict[str, float]]:
    """Every site's parameters drawn from the run's seed (no site config given)."""
    return draw_site_params(settings.env_id, settings.sites, settings.seed)


def round_seed(seed: int, site: int, server_round: int) -> int:
    """A seed of its own for each site and round."""
    return int(np.random.SeedSequence([seed, site, server_round]).generate_state(1)[0] >> 1)


class SpaceMismatchError(ConfigError):
    """A site's observation or action space is not the global policy's."""


def describe_space(space: SpaceSpec) -> str:
    """What a network depends on in a space, as text: ``box(4,) float32``, ``discrete(2)``."""
    if space.kind == "discrete":
        return f"discrete({space.n})"
    if space.kind == "multi_discrete":
        return f"multi_discrete{tuple(space.nvec or ())}"
    return f"{space.kind}{tuple(space.shape)} {space.dtype}"


def spaces_of(parts: RunParts) -> dict[str, str]:
    """The observation and action spaces of the parts' one agent, described."""
    return {
        "observation-space": describe_space(parts.spec.observation_spaces[0]),
        "action-space": describe_space(parts.spec.action_spaces[0]),
    }


def check_spaces(own: dict[str, str], expected: dict[str, str], where: str) -> None:
    """SpaceMismatchError naming both spaces where ``own`` differs from ``expected``
    (the global policy's; a key it lacks is not checked)."""
    wrong = [
        f"its {key.split('-')[0]} space is {own[key]}, the global policy's is {expected[key]}"
        for key in ("observation-space", "action-space")
        if key in expected and expected[key] != own[key]
    ]
    if wrong:
        raise SpaceMismatchError(f"{where}: {'; '.join(wrong)}")


def get_weights(parts: RunParts) -> Weights:
    """Copies of the network's parameters."""
    module = broadcast_module(parts.learner)
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def set_weights(parts: RunParts, weights: Weights) -> None:
    """Copy ``weights`` into the network in place (views of it stay valid)."""
    module = broadcast_module(parts.learner)
    own = module.state_dict()
    if list(own) != list(weights):
        raise ConfigError(
            f"the global weights name {sorted(weights)} but this site's network has "
            f"{sorted(own)}; every site must train the same algorithm on the same spaces"
        )
    module.load_state_dict(
        {k: torch.from_numpy(np.asarray(v, dtype=own[k].numpy().dtype)) for k, v in weights.items()}
    )


@dataclass
class SiteResult:
    """What a site did in one round."""

    weights: Weights
    """Its new weights."""
    env_steps: int
    """Environment steps it trained on."""
    episodes: int
    """Episodes it finished."""
    return_mean: float
    """Mean return of those episodes (nan when none finished)."""


class SiteTrainer:
    """Trains and evaluates one site's copy of the algorithm on its env variant."""

    def __init__(
        self,
        settings: FederationSettings,
        site: int,
        env_id: str | None = None,
        params: dict[str, float] | None = None,
        expected_spaces: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.site = site
        self.env_id = env_id or settings.env_id
        """The site's environment (the run's unless the site names its own)."""
        if params is None:
            params = (settings.site_params or default_site_params(settings))[site]
        self.params = params
        self.expected_spaces = expected_spaces or {}
        """The global policy's spaces, described; the site refuses to train on others."""
        self.spec, self.algo_config = algo_spec(settings)

    def build(self, envs: int, seed: int) -> RunParts:
        """The site's run parts (its env variant, a fresh learner); SpaceMismatchError
        when its spaces are not the global policy's."""
        parts = self._build(envs, seed)
        try:
            check_spaces(spaces_of(parts), self.expected_spaces, f"site {self.site}")
        except SpaceMismatchError:
            parts.env.close()
            raise
        return parts

    def _build(self, envs: int, seed: int) -> RunParts:
        return build_parts(
            self.env_id,
            self.spec,
            self.algo_config,
            envs=envs,
            seed=seed,
            normalize_obs=False,
            env_params=self.params,
        )

    def train(self, weights: Weights, server_round: int) -> SiteResult:
        """Train ``local_steps`` env steps starting from ``weights``."""
        cfg = self.settings
        seed = round_seed(cfg.seed, self.site, server_round)
        parts = self.build(cfg.envs, seed)
        try:
            set_weights(parts, weights)
            learner = parts.learner
            learner.total_env_steps = cfg.rounds * cfg.local_steps
            learner.env_steps = (server_round - 1) * cfg.local_steps
            rollout = int(getattr(self.algo_config, "rollout_steps", 32))
            collector = parts.collector(rollout, reward_gamma=None, seed=seed)
            policy = learner.rollout_policy()
            anchor = get_weights(parts) if cfg.strategy == "fedprox" else None
            steps = 0
            while steps < cfg.local_steps:
                learner.update(collector.collect(policy, learner.version))
                steps += rollout * cfg.envs
                if anchor is not None:
                    self._proximal_step(parts, anchor)
            returns = list(collector.stats.returns)
            return SiteResult(
                get_weights(parts),
                steps,
                collector.stats.episodes,
                float(np.mean(returns)) if returns else float("nan"),
            )
        finally:
            parts.env.close()

    def _proximal_step(self, parts: RunParts, anchor: Weights) -> None:
        """FedProx's term mu/2 |w - w_global|^2, as a decoupled step after each update
        (the way AdamW decouples weight decay): w -= lr * mu * (w - w_global)."""
        rate = float(getattr(self.algo_config, "learning_rate", 1e-3)) * self.settings.proximal_mu
        module = broadcast_module(parts.learner)
        with torch.no_grad():
            for name, tensor in module.state_dict().items():
                if tensor.is_floating_point():
                    tensor.sub_(rate * (tensor - torch.from_numpy(anchor[name])))

    def evaluate(self, weights: Weights, episodes: int, seed: int) -> list[float]:
        """Returns of ``episodes`` deterministic episodes of ``weights`` on this site's env."""
        parts = self.build(1, seed)
        parts.env.close()
        set_weights(parts, weights)
        spec = parts.spec
        agent = Agent(
            parts.learner.agent_policies()[0],
            spec.observation_spaces[0],
            spec.action_spaces[0],
            identity,
            parts.actuators[0],
        )
        return play(agent, self.env_id, self.params, episodes, seed)


def play(
    agent: Agent, env_id: str, params: dict[str, float], episodes: int, seed: int
) -> list[float]:
    """One episode in each of ``episodes`` copies of the env variant; their returns."""
    env = make_vector_env(env_id, episodes, params)
    try:
        obs, _ = env.reset(seed=seed)
        totals = np.zeros(episodes, dtype=np.float64)
        running = np.ones(episodes, dtype=bool)
        for _ in range(MAX_EPISODE_STEPS):
            obs, rewards, terminated, truncated, _ = env.step(agent.act_batch(obs))
            totals += np.where(running, rewards, 0.0)
            running &= ~(np.asarray(terminated) | np.asarray(truncated))
            if not running.any():
                break
        return [float(v) for v in totals]
    finally:
        env.close()
