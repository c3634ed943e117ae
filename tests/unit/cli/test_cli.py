"""One smoke test per subcommand and every bad input of `fleetmind train`/`eval`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetmind import __version__
from fleetmind.cli.main import COMMANDS, main

TINY = ["--steps", "256", "--envs", "4", "--ppo.rollout-steps", "16", "--ppo.minibatch-size", "64"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse exits on --help and usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_version_in_a_real_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fleetmind", "--version"], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == f"fleetmind {__version__}"


@pytest.mark.parametrize("command", [m.rsplit(".", 1)[1].removesuffix("_cmd") for m in COMMANDS])
def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run_cli(capsys, command.replace("_", "-"), "--help")
    assert code == 0
    assert "usage: fleetmind" in out


def test_train_help_is_generated_from_field_docs(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_cli(capsys, "train", "--help")
    out = " ".join(out.split())
    assert "Stop once the mean return of the last 100 episodes reaches this" in out
    assert "--ppo.learning-rate" in out
    assert "Adam step size at the start of training" in out


def test_envs_lists_classic_control_and_toy_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "envs", "--json")
    ids = json.loads(out)
    assert code == 0
    for env_id in (
        "CartPole-v1",
        "Pendulum-v1",
        "Acrobot-v1",
        "MountainCar-v0",
        "FrozenLake-v1",
        "Taxi-v4",
    ):
        assert env_id in ids


def test_train_then_eval_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "CartPole-v1", "--run-dir", str(run), *TINY)
    assert code == 0, err
    assert json.loads(out)["env_steps"] == 256
    code, out, err = run_cli(capsys, "eval", str(run), "--episodes", "3", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"mean_return", "std_return", "episodes"}
    assert result["episodes"] == 3


def test_train_with_yaml_config_and_toy_text_env(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("envs: 2\nsteps: 128\nppo:\n  rollout_steps: 8\n  minibatch_size: 16\n")
    run = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "FrozenLake-v1", "--config", str(config), "--run-dir", str(run)
    )
    assert code == 0, err
    saved = json.loads((run / "config.json").read_text())
    assert saved["envs"] == 2
    assert saved["ppo"]["rollout_steps"] == 8


def test_resume_from_cli_extends_the_budget(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "CartPole-v1", "--run-dir", str(run), *TINY)[0] == 0
    code, out, err = run_cli(capsys, "train", "--resume", str(run), "--steps", "512")
    assert code == 0, err
    assert json.loads(out)["env_steps"] == 512


def test_resume_reads_the_config_file_by_the_resume_rules(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "CartPole-v1", "--run-dir", str(run), *TINY)[0] == 0
    more = tmp_path / "more.yaml"
    more.write_text("steps: 512\nenvs: 4\n")  # envs as the run has it: no change
    code, out, err = run_cli(capsys, "train", "--resume", str(run), "--config", str(more))
    assert code == 0, err
    assert json.loads(out)["env_steps"] == 512
    changed = tmp_path / "changed.yaml"
    changed.write_text("steps: 1024\nseed: 99\n")
    code, _, err = run_cli(capsys, "train", "--resume", str(run), "--config", str(changed))
    assert_clean_error(code, err, "--seed cannot change when resuming")
    algo = tmp_path / "algo.yaml"
    algo.write_text("ppo:\n  learning_rate: 0.1\n")
    code, _, err = run_cli(capsys, "train", "--resume", str(run), "--config", str(algo))
    assert_clean_error(code, err, "ppo.* but an algorithm's settings cannot change")


def assert_clean_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def test_unknown_env_id_suggests_close_matches(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_cli(capsys, "train", "CartPol-v1", "--run-dir", str(tmp_path / "r"))
    assert_clean_error(code, err, "unknown environment id 'CartPol-v1'", "CartPole-v1")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--steps", "0"], "--steps must be a positive integer"),
        (["--steps", "-5"], "--steps must be a positive integer"),
        (["--envs", "0"], "--envs must be a positive integer"),
        (["--steps", "lots"], "--steps"),
        (["--algo", "ppp"], "unknown algorithm 'ppp'"),
        (["--ppo.gamma", "1.5"], "gamma"),
    ],
)
def test_bad_flags(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str], fragment: str
) -> None:
    code, _, err = run_cli(capsys, "train", "CartPole-v1", "--run-dir", str(tmp_path / "r"), *flags)
    assert_clean_error(code, err, fragment)


def test_malformed_yaml_names_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("steps: 10\nppo: [unclosed\n")
    code, _, err = run_cli(capsys, "train", "CartPole-v1", "--config", str(config))
    assert_clean_error(code, err, "bad.yaml is not valid YAML", "line")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("stepz: 10\n", "unknown config key"),
        ("ppo:\n  learning_rat: 0.1\n", "ppo.learning_rat"),
        ("- 1\n- 2\n", "must hold a mapping"),
    ],
)
def test_bad_config_keys(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, fragment: str
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    code, _, err = run_cli(capsys, "train", "CartPole-v1", "--config", str(config))
    assert_clean_error(code, err, fragment)


def test_non_empty_run_dir_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "train", "CartPole-v1", "--run-dir", str(run), *TINY)
    assert_clean_error(code, err, "is not empty", "--force")
    assert [p.name for p in run.iterdir()] == ["notes.txt"]
    code, _, err = run_cli(capsys, "train", "CartPole-v1", "--run-dir", str(run), "--force", *TINY)
    assert code == 0, err
    assert not (run / "notes.txt").exists()


def test_resume_without_checkpoint_names_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    assert_clean_error(code, err, str(run / "config.json"))
    (run / "config.json").write_text(json.dumps({"env_id": "CartPole-v1", "algo": "ppo"}))
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    assert_clean_error(code, err, "latest.json does not exist")


def test_resume_with_corrupted_checkpoint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "CartPole-v1", "--run-dir", str(run), *TINY)[0] == 0
    ckpt = next((run / "checkpoints").glob("ckpt-*.pt"))
    ckpt.write_bytes(ckpt.read_bytes()[:-10])
    code, _, err = run_cli(capsys, "train", "--resume", str(run))
    assert_clean_error(code, err, ckpt.name, "corrupted")
    code, _, err = run_cli(capsys, "eval", str(run))
    assert_clean_error(code, err, ckpt.name)


def test_nan_observations_are_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys, "train", "fleetmind-test/NaNObs-v0", "--run-dir", str(tmp_path / "r"), *TINY
    )
    assert_clean_error(code, err, "fleetmind-test/NaNObs-v0", "NaN", "env step")


def test_eval_bad_inputs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "eval", str(tmp_path))
    assert_clean_error(code, err, "holds no checkpoints")
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "CartPole-v1", "--run-dir", str(run), *TINY)[0] == 0
    code, _, err = run_cli(capsys, "eval", str(run), "--episodes", "0")
    assert_clean_error(code, err, "--episodes must be a positive integer")
