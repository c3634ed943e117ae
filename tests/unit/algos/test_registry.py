"""The algorithm registry: the CLI's view (config, summary) matches every SPEC."""

import subprocess
import sys

import pytest

from fleetmind.algos.registry import (
    algorithm_names,
    algorithm_summary,
    get_algorithm,
    get_config_cls,
)
from fleetmind.core.errors import UnknownNameError


@pytest.mark.parametrize("name", algorithm_names())
def test_cli_view_matches_the_spec(name: str) -> None:
    spec = get_algorithm(name)
    assert get_config_cls(name) is spec.config_cls
    assert algorithm_summary(name) == spec.summary


def test_unknown_names_get_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean: ppo"):
        get_config_cls("ppoo")
    with pytest.raises(UnknownNameError, match="Did you mean: mappo"):
        get_algorithm("mapo")


def test_building_the_cli_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from fleetmind.cli.main import build_parser\n"
        "build_parser()\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
