"""``fleetmind federate``: bad input is one line and exit 2, before any engine starts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fleetmind.cli.main import main


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--dp-noise", "-1", "--dp-clip", "1"], "--dp-noise must be a finite number >= 0"),
        (["--dp-noise", "1", "--dp-clip", "0"], "--dp-clip must be a positive number"),
        (["--dp-noise", "1", "--dp-clip", "1", "--dp-delta", "1"], "--dp-delta must be in (0, 1)"),
        (["--dp-noise", "1", "--dp-clip", "1", "--dp-delta", "0"], "--dp-delta must be in (0, 1)"),
        (["--sites", "0"], "--sites must be at least 1"),
        (["--rounds", "0"], "--rounds must be at least 1"),
        (["--dp-noise", "1"], "need --dp-clip C"),
        (["--sites", "2", "--strategy", "fedmedian"], "needs at least 3 sites"),
        (["--sites", "4", "--strategy", "trimmed-mean"], "needs at least 5 sites"),
        (
            ["--sites", "3", "--strategy", "fedmedian", "--dp-noise", "1", "--dp-clip", "1"],
            "differential privacy needs --strategy fedavg or fedprox",
        ),
        (
            ["--dp-target-epsilon", "0.0001", "--dp-clip", "1", "--rounds", "50"],
            "--dp-target-epsilon 0.0001 cannot be reached",
        ),
        (["--strategy", "fedsgd"], "--strategy must be one of"),
        (["--sample-fraction", "0"], "--sample-fraction must be in (0, 1]"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    code = main(["federate", "CartPole-v1", "--run-dir", str(run_dir), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("fleetmind federate: error: ")
    assert message in err
    assert "\n" not in err
    assert not run_dir.exists()


def test_a_site_config_naming_an_unknown_parameter_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sites.yaml"
    config.write_text("sites:\n  - {length: 0.5}\n  - {pole_colour: 3}\n")
    code = main(
        ["federate", "CartPole-v1", "--site-config", str(config), "--run-dir", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "site 1: CartPole-v1 has no parameter 'pole_colour'" in err
    assert "\n" not in err


def test_a_site_config_with_another_number_of_sites_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "sites.json"
    config.write_text('{"sites": [{"length": 0.5}]}')
    code = main(["federate", "CartPole-v1", "--sites", "2", "--site-config", str(config)])
    assert code == 2
    assert "describes 1 sites but --sites is 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["federate", "CartPole-v1"], "fleetmind.federated.run"),
        (
            [
                "site",
                "--superlink",
                "h:1",
                "--site",
                "0",
                "--root-certificates",
                "ca.pem",
                "--auth-key",
                "key",
            ],
            "fleetmind.federated.supernode",
        ),
    ],
)
def test_without_the_federated_extra_the_command_says_what_to_install(
    argv: list[str],
    module: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # importing it now fails
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"fleetmind {argv[0]}: error: fleetmind {argv[0]} needs Flower")
    assert "pip install 'fleetmind[federated]'" in err
    assert "\n" not in err
