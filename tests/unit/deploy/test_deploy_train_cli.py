"""``fleetmind deploy train``: what it writes, and what it refuses with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fleetmind.cli.main import main
from fleetmind.deploy.train_spec import CONFIG_FILE


def _deploy(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["deploy", "train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_writes_a_kustomization_from_the_flags_and_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "train.yaml"
    settings.write_text("steps: 40000\nppo:\n  learning_rate: 0.0005\ndistributed:\n  actors: 4\n")
    out = tmp_path / "k8s"
    code, stdout, err = _deploy(
        capsys, "CartPole-v1", "--config", str(settings), "--learners", "2", "--seed", "7",
        "--token-secret", "tokens", "--namespace", "agents", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["out"] == str(out)
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "agents"
    for resource in kustomization["resources"]:
        assert (out / resource).is_file()
    assert (out / "export" / "reader.yaml").is_file()
    config_map = yaml.safe_load((out / "train-config.yaml").read_text())
    written = yaml.safe_load(config_map["data"][CONFIG_FILE])
    assert (written["steps"], written["seed"], written["ppo"]["learning_rate"]) == (40000, 7, 5e-4)
    learners = yaml.safe_load((out / "learners.yaml").read_text())
    assert learners["spec"]["replicas"] == 2
    replicas = [yaml.safe_load((out / f"actors-{r}.yaml").read_text()) for r in (0, 1)]
    assert [d["spec"]["replicas"] for d in replicas] == [2, 2]  # the file's 4 actors, split
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_the_default_name_and_output_come_from_the_env_and_algorithm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, err = _deploy(capsys, "CartPole-v1", "--insecure")
    assert code == 0, err
    assert json.loads(stdout)["out"] == "k8s/cartpole-v1-ppo"
    actors = yaml.safe_load((tmp_path / "k8s/cartpole-v1-ppo/actors-0.yaml").read_text())
    assert actors["spec"]["replicas"] == 2


BAD_INPUTS = {
    "more learners than actors": (
        ["CartPole-v1", "--learners", "3", "--actors", "2"],
        "--learners 3 needs at least 3 actors",
    ),
    "unknown env": (["CartPole-v9"], "unknown environment id 'CartPole-v9'"),
    "no env": ([], "an environment id is required"),
    "no actors": (["CartPole-v1", "--actors", "0"], "--actors must be 1 or more"),
    "async ppo": (["CartPole-v1", "--mode", "async"], "--algo ppo trains on-policy"),
    "bad name": (["CartPole-v1", "--name", "Bad_Name"], "not a DNS-1123 label"),
    "long name": (["CartPole-v1", "--name", "a" * 41], "at most 40"),
    "bad image": (["CartPole-v1", "--image", "Fleet Mind"], "not an image"),
    "bad size": (["CartPole-v1", "--storage-size", "big"], "--storage-size"),
    "bad class": (["CartPole-v1", "--storage-class", "Fast_SSD"], "--storage-class"),
    "bad steps": (["CartPole-v1", "--steps", "0"], "--steps must be a positive integer"),
    "no token": (["CartPole-v1", "--token-secret", None], "--token-secret SECRET"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_nothing_written_or_overwritten(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, expected = BAD_INPUTS[case]
    token = [] if None in argv else ["--token-secret", "tokens"]
    argv = [a for a in argv if a is not None and a != "--token-secret"]
    for out, existing in ((tmp_path / "new", False), (tmp_path / "old", True)):
        if existing:
            out.mkdir()
            (out / "kustomization.yaml").write_text("mine\n")
        code, stdout, err = _deploy(capsys, *argv, *token, "--out", str(out), "--force")
        assert code == 2
        assert err.count("\n") == 1, err
        assert err.startswith("fleetmind deploy: error: ")
        assert expected in err
        assert stdout == ""
        if existing:
            assert [p.name for p in out.iterdir()] == ["kustomization.yaml"]
            assert (out / "kustomization.yaml").read_text() == "mine\n"
        else:
            assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_an_existing_output_is_kept_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    argv = ["CartPole-v1", "--insecure", "--out", str(out)]
    code, _, err = _deploy(capsys, *argv)
    assert code == 2
    assert "--force" in err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    code, _, _ = _deploy(capsys, *argv, "--force")
    assert code == 0
    assert not (out / "mine.txt").exists()
    assert (out / "kustomization.yaml").is_file()
