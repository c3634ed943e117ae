"""The apps are a Flower App: `flwr run deploy/flower` finds them and their settings."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from flwr.common.config import validate_config

from fleetmind.core.errors import ConfigError
from fleetmind.federated.deployment import write_flower_app
from fleetmind.federated.settings import FederationSettings

APP = Path(__file__).resolve().parents[2] / "deploy" / "flower"


def test_the_flower_app_is_valid_and_its_run_config_is_our_settings() -> None:
    config = tomllib.loads((APP / "pyproject.toml").read_text())
    valid, errors, _ = validate_config(config, check_module=True, project_dir=APP)
    assert valid, errors
    settings = FederationSettings.from_run_config(config["tool"]["flwr"]["app"]["config"])
    settings.validate()
    assert settings.env_id == "CartPole-v1"


def test_settings_survive_the_run_config() -> None:
    settings = FederationSettings(
        env_id="CartPole-v1",
        sites=3,
        dp_noise=1.2,
        dp_clip=0.5,
        run_dir=Path("runs/x"),
        site_params=[{"length": 0.4}, {"length": 0.6, "masscart": 2.0}, {"length": 0.5}],
    )
    assert FederationSettings.from_run_config(settings.to_run_config()) == settings


def test_an_unknown_run_config_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown federation setting 'local-stepz'"):
        FederationSettings.from_run_config({"local-stepz": 3})


def test_the_deployment_submits_an_app_whose_run_config_is_the_run(tmp_path: Path) -> None:
    settings = FederationSettings(
        env_id="CartPole-v1", sites=2, dp_noise=0.5, dp_clip=1.0, run_dir=tmp_path / "r"
    )
    settings.site_params = [{"length": 0.4}, {"length": 0.6}]
    app = write_flower_app(tmp_path / "app", settings)
    config = tomllib.loads((app / "pyproject.toml").read_text())
    valid, errors, _ = validate_config(config, check_module=True, project_dir=app)
    assert valid, errors
    assert FederationSettings.from_run_config(config["tool"]["flwr"]["app"]["config"]) == settings
