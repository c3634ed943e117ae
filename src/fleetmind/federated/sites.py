"""What makes sites differ: each site's environment parameters.

Without a site config they are drawn from the run's seed (CartPole: the pole's
length and the cart's mass); a site config is a YAML or JSON file::

    sites:
      - {length: 0.4, masscart: 1.0}
      - {length: 0.8, masscart: 2.0}

Every name must be a constant of the environment (:mod:`fleetmind.envs.variants`),
checked before the run starts so that a typo is a one-line error, not a failed round.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fleetmind.core.errors import ConfigError
from fleetmind.envs.registry import make_vector_env

DRAWS: dict[str, dict[str, tuple[float, float]]] = {
    "CartPole-v1": {"length": (0.3, 0.9), "masscart": (0.5, 2.0)},
    "CartPole-v0": {"length": (0.3, 0.9), "masscart": (0.5, 2.0)},
}
"""Per env id: the uniform range each drawn parameter comes from."""


def draw_site_params(env_id: str, sites: int, seed: int) -> list[dict[str, float]]:
    """Parameters of ``sites`` sites drawn from ``seed`` (empty ones where the env
    has no ranges in :data:`DRAWS`: every site then sees the same env)."""
    ranges = DRAWS.get(env_id, {})
    rng = np.random.default_rng([seed, 21])
    return [
        {name: round(float(rng.uniform(low, high)), 4) for name, (low, high) in ranges.items()}
        for _ in range(sites)
    ]


def read_site_config(path: Path) -> list[dict[str, float]]:
    """The ``sites`` list of a YAML/JSON file; ConfigError naming the file otherwise."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
        data: Any = json.loads(text) if Path(path).suffix == ".json" else yaml.safe_load(text)
    except OSError as exc:
        raise ConfigError(f"cannot read site config {path}: {exc.strerror}") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"site config {path} cannot be parsed: {exc}".splitlines()[0]) from None
    sites = data.get("sites") if isinstance(data, dict) else None
    if not isinstance(sites, list) or not all(isinstance(s, dict) for s in sites):
        raise ConfigError(f"site config {path} must hold 'sites: [{{name: value, ...}}, ...]'")
    out: list[dict[str, float]] = []
    for index, site in enumerate(sites):
        for name, value in site.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"site {index} of {path}: {name} must be a number, got {value!r}")
        out.append({str(k): float(v) for k, v in site.items()})
    return out


def check_site_params(env_id: str, site_params: list[dict[str, float]]) -> None:
    """Build one copy of each site's env, so that an unknown name fails now."""
    for index, params in enumerate(site_params):
        try:
            make_vector_env(env_id, 1, params).close()
        except ConfigError as exc:
            raise ConfigError(f"site {index}: {exc}") from None
