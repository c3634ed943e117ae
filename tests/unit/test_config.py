from dataclasses import dataclass
from pathlib import Path

import pytest

from fleetmind.config import config_from_mapping, config_to_dict, field_docs, merge_into
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
