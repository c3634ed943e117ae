"""``fleetmind federate``: check everything, create the run directory, run an engine.

Every bad input is a ConfigError before any engine starts: the settings, the site
config (a parameter the env lacks), a privacy target no noise reaches::

    summary = federate(FederationSettings(env_id="CartPole-v1", sites=3, rounds=10))

The simulation engine is Flower's (``run_simulation``, on ray): one ray worker per
CPU a site asks for, ``num_cpus`` of the machine at most, no dashboard. The
deployment engine is Flower's too, as processes of this machine
(:mod:`fleetmind.federated.deployment`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleetmind.core.errors import ConfigError
from fleetmind.envs.registry import resolve_env_id
from fleetmind.federated.client_app import build_client_app
from fleetmind.federated.global_run import create_run_dir
from fleetmind.federated.server_app import Outcome, build_server_app, resolved_noise
from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.site_training import algo_spec
from fleetmind.federated.sites import check_site_params, draw_site_params, read_site_config

if TYPE_CHECKING:
    from flwr.clientapp.typing import Mod

log = logging.getLogger("fleetmind.federated")

QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
    "FLWR_TELEMETRY_ENABLED": "0",
}
"""Environment of the engine: no usage reports, no FutureWarning from ray on CPU-only nodes."""


def prepare(settings: FederationSettings, site_config: Path | None = None) -> float | None:
    """Validate ``settings`` and fill in the sites; return the noise multiplier (or None)."""
    settings.validate()
    settings.env_id = resolve_env_id(settings.env_id)
    algo_spec(settings)
    if site_config is not None:
        settings.site_params = read_site_config(site_config)
    elif not settings.site_params:
        settings.site_params = draw_site_params(settings.env_id, settings.sites, settings.seed)
    settings.validate()
    check_site_params(settings.env_id, settings.site_params)
    return resolved_noise(settings)


def federate(
    settings: FederationSettings, site_config: Path | None = None, force: bool = False
) -> dict[str, Any]:
    """Run the federation ``settings`` describe; return its summary."""
    noise = prepare(settings, site_config)
    create_run_dir(settings, noise, force)
    if settings.engine == "deployment":
        return deploy(settings)
    return simulate(settings)


def deploy(settings: FederationSettings) -> dict[str, Any]:
    """The federation on Flower's deployment engine: a SuperLink and one SuperNode per
    site as processes of this machine, over TLS with SuperNode authentication."""
    from fleetmind.federated.deployment import Deployment

    with (
        tempfile.TemporaryDirectory(prefix="fleetmind-flower-") as folder,
        Deployment(Path(folder)) as fleet,
    ):
        try:
            fleet.start_superlink()
            for site in range(settings.sites):
                fleet.add_site(site)
            return fleet.run(settings)
        finally:
            fleet.stop()
            if settings.run_dir is not None:
                fleet.keep_logs(Path(settings.run_dir))


def quiet_flower() -> None:
    """Flower's log lines once (its own handler, not also ours), warnings only unless
    fleetmind logs at DEBUG."""
    flower = logging.getLogger("flwr")
    flower.propagate = False
    if not log.isEnabledFor(logging.DEBUG):
        flower.setLevel(logging.WARNING)


def simulate(settings: FederationSettings, client_mods: Sequence[Mod] = ()) -> dict[str, Any]:
    """The federation on Flower's simulation engine, in this process and ray workers;
    ``client_mods`` wrap every site's ClientApp (Flower mods)."""
    from flwr.simulation import run_simulation

    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    quiet_flower()
    outcome = Outcome()
    cpus = max(1, min(settings.sites, os.cpu_count() or 1))
    backend = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": cpus, "num_gpus": 0, "include_dashboard": False},
    }
    try:
        run_simulation(
            server_app=build_server_app(settings, outcome),
            client_app=build_client_app(settings, client_mods),
            num_supernodes=settings.sites,
            backend_config=backend,  # type: ignore[arg-type]
        )
    except Exception:
        if outcome.error is None:
            raise
    if outcome.error is not None:
        raise outcome.error
    if outcome.summary is None:
        raise ConfigError("the simulation engine ended without finishing the run")
    return outcome.summary
