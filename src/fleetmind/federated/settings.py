"""The settings of a federated run, one dataclass for the command, the apps and Flower.

``fleetmind federate`` builds it from flags; Flower's ``flwr run`` hands the same
fields to the apps as the run config (:meth:`FederationSettings.from_run_config`,
keys with dashes: ``local-steps = 2048``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fleetmind.core.errors import ConfigError

STRATEGIES = ("fedavg", "fedprox", "fedmedian", "trimmed-mean")
MEAN_STRATEGIES = ("fedavg", "fedprox")
"""Strategies whose aggregate is the mean, the only ones the DP noise is calibrated for."""
ENGINES = ("simulation", "deployment")
CLIPPING = ("server", "client")


@dataclass
class FederationSettings:
    """What a federation trains, how sites are sampled and aggregated, and its privacy."""

    env_id: str = ""
    """Environment id every site trains on (its own variant of it)."""
    sites: int = 2
    """Number of sites (Flower SuperNodes)."""
    rounds: int = 10
    """Federated rounds."""
    local_steps: int = 2048
    """Environment steps each sampled site trains for in a round."""
    algo: str = "ppo"
    """Algorithm each site trains with (a single-agent one)."""
    envs: int = 4
    """Environment copies each site steps together."""
    sample_fraction: float = 1.0
    """Fraction q of the sites sampled each round (Flower samples int(q * sites) of
    them uniformly without replacement, at least the strategy's minimum)."""
    strategy: str = "fedavg"
    """Aggregation: fedavg, fedprox, fedmedian or trimmed-mean (Flower's strategies)."""
    proximal_mu: float = 0.01
    """FedProx: weight of the pull towards the global weights during local training."""
    trim_fraction: float = 0.2
    """trimmed-mean: fraction of the updates cut at each end, per coordinate."""
    dp_noise: float | None = None
    """Noise multiplier z of the Gaussian mechanism (None: no differential privacy)."""
    dp_clip: float | None = None
    """Clipping norm C of each site's update (required with --dp-noise)."""
    dp_delta: float = 1e-5
    """The delta at which epsilon is reported."""
    dp_target_epsilon: float | None = None
    """Pick z so that the whole run spends this epsilon (instead of --dp-noise)."""
    dp_clipping: str = "server"
    """Where updates are clipped: server (every site's bound enforced) or client."""
    local_dp_epsilon: float | None = None
    """Local DP (Flower's LocalDpMod), for sites that trust nobody: the epsilon of each
    update a site sends, at most 1 (None: off)."""
    local_dp_clip: float | None = None
    """Local DP: the norm each site clips its update to before adding its own noise."""
    local_dp_delta: float = 1e-5
    """Local DP: the delta of each update a site sends, and of its total over the run."""
    secure_aggregation: bool = False
    """Aggregate with Flower's SecAgg+: the server sees only the sum of the sites' weights."""
    secagg_threshold: float = 0.67
    """SecAgg+: fraction of a round's sampled sites (at least 2) whose key shares recover
    a dropped site's masks; up to the others may drop out and the round completes."""
    engine: str = "simulation"
    """Flower engine: simulation (one machine) or deployment (SuperLink + SuperNodes)."""
    eval_episodes: int = 5
    """Episodes each site plays with the global policy after every round."""
    seed: int = 1
    """Seed of the initial weights, the site draws and each site's training."""
    run_dir: Path | None = None
    """Where config, metrics, the global checkpoint and the curve go."""
    site_params: list[dict[str, float]] = field(default_factory=list)
    """Each site's environment parameters (from --site-config, or drawn from the seed)."""

    def validate(self) -> None:
        """Raise ConfigError for values outside their domain."""
        for name in ("sites", "rounds", "local_steps", "envs", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        if not self.env_id:
            raise ConfigError("an environment id is required: fleetmind federate ENV_ID ...")
        if not 0 < self.sample_fraction <= 1:
            raise ConfigError(f"--sample-fraction must be in (0, 1], got {self.sample_fraction}")
        _choice("strategy", self.strategy, STRATEGIES)
        _choice("engine", self.engine, ENGINES)
        _choice("dp-clipping", self.dp_clipping, CLIPPING)
        if self.proximal_mu < 0:
            raise ConfigError(f"--proximal-mu must be >= 0, got {self.proximal_mu}")
        if not 0 < self.trim_fraction < 0.5:
            raise ConfigError(f"--trim-fraction must be in (0, 0.5), got {self.trim_fraction}")
        self._validate_dp()
        self._validate_secure_aggregation()
        self._validate_local_dp()
        if len(self.site_params) not in (0, self.sites):
            raise ConfigError(
                f"the site config describes {len(self.site_params)} sites but --sites is "
                f"{self.sites}; give one entry per site"
            )
        low = min_sites(self)
        if self.sites < low:
            raise ConfigError(
                f"--strategy {self.strategy} needs at least {low} sites a round, got "
                f"--sites {self.sites}"
            )

    def _validate_dp(self) -> None:
        if self.dp_noise is not None and self.dp_target_epsilon is not None:
            raise ConfigError("give --dp-noise or --dp-target-epsilon, not both")
        if self.dp_noise is not None and not (self.dp_noise >= 0 and math.isfinite(self.dp_noise)):
            raise ConfigError(f"--dp-noise must be a finite number >= 0, got {self.dp_noise}")
        if self.dp_clip is not None and not (self.dp_clip > 0 and math.isfinite(self.dp_clip)):
            raise ConfigError(f"--dp-clip must be a positive number, got {self.dp_clip}")
        if not 0 < self.dp_delta < 1:
            raise ConfigError(f"--dp-delta must be in (0, 1), got {self.dp_delta}")
        if self.dp_target_epsilon is not None and not self.dp_target_epsilon > 0:
            raise ConfigError(f"--dp-target-epsilon must be positive, got {self.dp_target_epsilon}")
        if not self.private:
            return
        if self.dp_clip is None:
            raise ConfigError("--dp-noise and --dp-target-epsilon need --dp-clip C")
        if self.strategy not in MEAN_STRATEGIES:
            raise ConfigError(
                f"differential privacy needs --strategy fedavg or fedprox: the noise is "
                f"calibrated to the mean of clipped updates, not to {self.strategy}"
            )

    def _validate_local_dp(self) -> None:
        epsilon, clip = self.local_dp_epsilon, self.local_dp_clip
        if epsilon is None:
            if clip is not None:
                raise ConfigError("--local-dp-clip needs --local-dp-epsilon")
            return
        if not 0 < epsilon <= 1:
            raise ConfigError(
                f"--local-dp-epsilon must be in (0, 1] (the Gaussian mechanism's noise "
                f"formula LocalDpMod uses holds there), got {epsilon}"
            )
        if clip is None or not (clip > 0 and math.isfinite(clip)):
            raise ConfigError(f"--local-dp-epsilon needs --local-dp-clip C > 0, got {clip}")
        if not 0 < self.local_dp_delta < 1:
            raise ConfigError(f"--local-dp-delta must be in (0, 1), got {self.local_dp_delta}")

    def _validate_secure_aggregation(self) -> None:
        if not 0 < self.secagg_threshold <= 1:
            raise ConfigError(f"--secagg-threshold must be in (0, 1], got {self.secagg_threshold}")
        if not self.secure_aggregation:
            return
        if self.strategy not in MEAN_STRATEGIES:
            raise ConfigError(
                f"--secure-aggregation needs --strategy fedavg or fedprox: the server sees only "
                f"the sum of the updates, which {self.strategy} cannot be computed from"
            )
        if self.private and self.dp_clipping != "client":
            raise ConfigError(
                "--secure-aggregation with differential privacy needs --dp-clipping client: "
                "the server never sees an update to clip"
            )
        if self.sample_size() < 2:
            raise ConfigError(
                f"--secure-aggregation needs at least 2 sites a round, got {self.sample_size()}"
            )

    @property
    def private(self) -> bool:
        """True when updates are clipped and noised."""
        return self.dp_noise is not None or self.dp_target_epsilon is not None

    def sample_size(self) -> int:
        """Sites Flower samples each round (its rule: ``max(int(q * N), minimum)``)."""
        return min(self.sites, max(int(self.sites * self.sample_fraction), min_sites(self)))

    def to_run_config(self) -> dict[str, Any]:
        """Flower's run config: scalar values under dashed keys (None fields left out)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name == "site_params":
                value = ";".join(",".join(f"{k}={v}" for k, v in p.items()) for p in value)
            out[f.name.replace("_", "-")] = str(value) if isinstance(value, Path) else value
        return out

    @classmethod
    def from_run_config(cls, config: dict[str, Any]) -> FederationSettings:
        """Inverse of :meth:`to_run_config`; unknown keys are ConfigErrors."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in config.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ConfigError(f"unknown federation setting {key!r}")
            values[name] = value
        if "site_params" in values:
            values["site_params"] = _parse_site_params(str(values["site_params"]))
        if "run_dir" in values:
            values["run_dir"] = Path(values["run_dir"])
        return cls(**values)


def min_sites(settings: FederationSettings) -> int:
    """Sites a round needs for the strategy to mean what it says."""
    if settings.strategy == "fedmedian":
        return 3
    if settings.strategy == "trimmed-mean":
        return math.ceil(1 / settings.trim_fraction - 1e-9)
    return 1


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"--{name} must be one of {', '.join(allowed)}, got {value!r}")


def parse_params(text: str) -> dict[str, float]:
    """One site's parameters from ``name=value,name=value``; ConfigError when malformed."""
    params: dict[str, float] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        name, sep, value = pair.partition("=")
        try:
            if not sep or not name:
                raise ValueError(pair)
            params[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(
                f"environment parameters must read name=value,name=value; got {pair!r}"
            ) from None
    return params


def _parse_site_params(text: str) -> list[dict[str, float]]:
    return [parse_params(chunk) for chunk in text.split(";")] if text else []
