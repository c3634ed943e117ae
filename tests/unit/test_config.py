from dataclasses import dataclass
from pathlib import Path

import pytest

from fleetmind.config import (
    coerce_fields,
    config_from_mapping,
    config_to_dict,
    field_docs,
    merge_into,
    partition_settings,
)
from fleetmind.core.errors import ConfigError


@dataclass
class Example:
    """An example config."""

    rate: float = 0.1
    """How fast."""
    count: int = 3
    """How many."""
    name: str | None = None
    """Optional name."""
    flag: bool = False
    """A switch."""
    sizes: tuple[int, ...] = (64, 64)
    """Widths."""
    where: Path = Path("x")
    """A path."""


def test_field_docs_read_from_source() -> None:
    docs = field_docs(Example)
    assert docs["rate"] == "How fast."
    assert docs["sizes"] == "Widths."


def test_coerces_strings_from_flags() -> None:
    cfg = config_from_mapping(
        Example, {"rate": "0.5", "count": "7", "flag": "true", "sizes": "32,16", "where": "a/b"}
    )
    assert cfg == Example(0.5, 7, None, True, (32, 16), Path("a/b"))


def test_unknown_key_names_it_and_suggests() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key cfg\.rat.*did you mean rate"):
        config_from_mapping(Example, {"rat": 1}, where="cfg")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"count": "many"}, "count"),
        ({"count": 1.5}, "integer"),
        ({"flag": "maybe"}, "true or false"),
        ({"rate": None}, "must not be null"),
        ({"rate": True}, "number"),
    ],
)
def test_bad_values_raise_config_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(Example, data)


def test_merge_and_dump_round_trip() -> None:
    cfg = merge_into(Example(), {"count": 9, "name": "n"})
    assert cfg.count == 9
    assert cfg.name == "n"
    assert config_from_mapping(Example, config_to_dict(cfg)) == cfg


@dataclass
class Other:
    """A second config whose fields share one flat namespace with Example's."""

    speed: int = 1
    """How quick."""


def test_unknown_key_lists_every_setting() -> None:
    with pytest.raises(ConfigError, match=r"\(settings: count, flag, name, rate, sizes, where\)"):
        config_from_mapping(Example, {"rat": 1}, where="cfg")


def test_flat_settings_are_split_by_field() -> None:
    example, other = partition_settings({"rate": 1, "speed": 2, "flag": True}, (Example, Other))
    assert example == {"rate": 1, "flag": True}
    assert other == {"speed": 2}


def test_a_setting_of_no_class_names_it_with_close_matches_of_all() -> None:
    with pytest.raises(ConfigError) as info:
        partition_settings({"sped": 2}, (Example, Other), where="f")
    message = str(info.value)
    assert "unknown config key f.sped; did you mean speed?" in message
    assert "settings: count, flag, name, rate, sizes, speed, where" in message


def test_coerce_fields_converts_to_the_field_types() -> None:
    assert coerce_fields(Example, {"count": "4", "where": "a"}) == {"count": 4, "where": Path("a")}
    with pytest.raises(ConfigError, match=r"f\.count must be an integer"):
        coerce_fields(Example, {"count": 1.5}, where="f")
