"""Sites differ by the constants of their environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetmind.core.errors import ConfigError
from fleetmind.envs.registry import make_vector_env
from fleetmind.federated.sites import check_site_params, draw_site_params, read_site_config


def test_a_variant_sets_constants_and_recomputes_derived_ones() -> None:
    env = make_vector_env("CartPole-v1", 2, {"length": 0.8, "masscart": 2.0})
    physics = env.unwrapped
    assert physics.length == 0.8
    assert physics.total_mass == pytest.approx(2.0 + physics.masspole)
    assert physics.polemass_length == pytest.approx(physics.masspole * 0.8)
    env.close()


def test_an_unknown_parameter_names_the_ones_the_env_has() -> None:
    with pytest.raises(ConfigError, match=r"site 1: CartPole-v1 has no parameter 'lenght'.*length"):
        check_site_params("CartPole-v1", [{"length": 0.5}, {"lenght": 0.5}])
    with pytest.raises(ConfigError, match=r"no parameter .total_mass."):
        check_site_params("CartPole-v1", [{"total_mass": 3.0}])


def test_draws_come_from_the_seed() -> None:
    first = draw_site_params("CartPole-v1", 4, seed=3)
    assert first == draw_site_params("CartPole-v1", 4, seed=3)
    assert first != draw_site_params("CartPole-v1", 4, seed=4)
    assert all(0.3 <= p["length"] <= 0.9 and 0.5 <= p["masscart"] <= 2.0 for p in first)
    assert draw_site_params("Acrobot-v1", 2, seed=3) == [{}, {}]


def test_a_site_config_is_yaml_or_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "sites.yaml"
    yaml_file.write_text("sites:\n  - {length: 0.4, masscart: 1}\n  - {length: 0.7}\n")
    assert read_site_config(yaml_file) == [{"length": 0.4, "masscart": 1.0}, {"length": 0.7}]
    json_file = tmp_path / "sites.json"
    json_file.write_text('{"sites": [{"length": 0.4}]}')
    assert read_site_config(json_file) == [{"length": 0.4}]
    json_file.write_text('{"sites": [{"length": "long"}]}')
    with pytest.raises(ConfigError, match="length must be a number"):
        read_site_config(json_file)
