"""``fleetmind serve`` reads every option from FLEETMIND_<OPTION> too; flags win."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fleetmind.cli.main import build_parser, main
from fleetmind.cli.serve_cmd import serve_config
from fleetmind.serve.config import ServeConfig


def test_variables_fill_options_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETMIND_PORT", "9100")
    monkeypatch.setenv("FLEETMIND_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("FLEETMIND_TOKEN_FILE", "/run/tokens")
    monkeypatch.setenv("FLEETMIND_FORWARD_IN_THREAD", "true")
    args = build_parser().parse_args(["serve", "runs/x", "--max-batch-size", "4"])
    config = serve_config(args)
    assert config.port == 9100
    assert config.max_batch_size == 4
    assert config.token_file == Path("/run/tokens")
    assert config.forward_in_thread is True


def test_every_option_has_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServeConfig()
    for field in dataclasses.fields(ServeConfig):
        value = getattr(config, field.name)
        if value is not None:
            monkeypatch.setenv(f"FLEETMIND_{field.name.upper()}", str(value))
    args = build_parser().parse_args(["serve", "runs/x"])
    assert serve_config(args) == config


def test_a_bad_variable_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLEETMIND_MAX_QUEUE", "many")
    assert main(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "FLEETMIND_MAX_QUEUE" in err
