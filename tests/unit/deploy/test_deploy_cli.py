"""``fleetmind deploy serve``: what it writes, and what it refuses with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fleetmind.cli.main import main
from fleetmind.deploy import kustomize

TOKEN = ["--token-secret", "fleet-tokens"]
"""Every fleet serves with tokens unless a test says otherwise."""


def _deploy(
    capsys: pytest.CaptureFixture[str], *argv: str, token: bool = True
) -> tuple[int, str, str]:
    code = main(["deploy", "serve", *argv, *(TOKEN if token else [])])
    out, err = capsys.readouterr()
    return code, out, err


def test_writes_a_kustomization(
    model_paths: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "k8s"
    code, stdout, _ = _deploy(
        capsys,
        str(model_paths["run"]),
        "--name",
        "cartpole",
        "--out",
        str(out),
        "--min-replicas",
        "2",
        "--max-replicas",
        "4",
        "--namespace",
        "agents",
    )
    assert code == 0
    assert json.loads(stdout)["out"] == str(out)
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "agents"
    for resource in kustomization["resources"]:
        assert (out / resource).is_file()
    hpa = yaml.safe_load((out / "hpa.yaml").read_text())
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


BAD_INPUTS = {
    "not a run": (["{empty}", "--name", "ok"], "neither a run directory"),
    "missing path": (["{missing}", "--name", "ok"], "is not a directory"),
    "bad name": (["{run}", "--name", "Bad_Name"], "not a DNS-1123 label"),
    "long name": (["{run}", "--name", "a" * 64], "not a DNS-1123 label"),
    "min above max": (
        ["{run}", "--name", "ok", "--min-replicas", "5", "--max-replicas", "3"],
        "above --max-replicas",
    ),
    "bad image": (["{run}", "--name", "ok", "--image", "Fleet Mind:latest"], "not an image"),
    "bad tag": (["{run}", "--name", "ok", "--image", "fleetmind:"], "not an image"),
    "replicas and bounds": (
        ["{run}", "--name", "ok", "--replicas", "2", "--max-replicas", "3"],
        "--replicas fixes the size",
    ),
    "bad secret name": (["{run}", "--name", "ok", "--tls-secret", "TLS"], "--tls-secret"),
    "bad quantity": (["{run}", "--name", "ok", "--memory", "lots"], "--memory"),
    "wait target at the shedding threshold": (
        ["{run}", "--name", "ok", "--target-wait-ms", "100"],
        "--target-wait-ms must be above 0 and below the servers' --max-wait-ms (100",
    ),
    "zero wait target": (["{run}", "--name", "ok", "--target-wait-ms", "0"], "--target-wait-ms"),
    "nan wait target": (["{run}", "--name", "ok", "--target-wait-ms", "nan"], "--target-wait-ms"),
    "bad cpu target": (["{run}", "--name", "ok", "--target-cpu", "fast"], "--target-cpu"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_nothing_written(
    case: str, model_paths: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, expected = BAD_INPUTS[case]
    (tmp_path / "empty").mkdir()
    paths = {
        "{run}": str(model_paths["run"]),
        "{empty}": str(tmp_path / "empty"),
        "{missing}": str(tmp_path / "missing"),
    }
    out = tmp_path / "out"
    code, stdout, err = _deploy(capsys, *(paths.get(a, a) for a in argv), "--out", str(out))
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("fleetmind deploy: error: ")
    assert expected in err
    assert stdout == ""
    assert not out.exists()


def test_a_fleet_without_tokens_is_refused_unless_insecure(
    model_paths: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = [str(model_paths["run"]), "--name", "open", "--out", str(out)]
    code, _, err = _deploy(capsys, *argv, token=False)
    assert code == 2
    assert "--token-secret SECRET" in err
    assert "--insecure" in err
    assert not out.exists()
    code, _, err = _deploy(capsys, *argv, "--insecure", token=False)
    assert code == 0, err
    deployment = yaml.safe_load((out / "deployment.yaml").read_text())
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["FLEETMIND_INSECURE"] == "1"
    assert "FLEETMIND_TOKEN_FILE" not in env


def test_a_failed_write_leaves_nothing_behind(
    model_paths: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written: list[str] = []
    real = Path.write_text

    def failing(self: Path, text: str, *args: object, **kwargs: object) -> int:
        if written:
            raise OSError(28, "No space left on device")
        written.append(str(self))
        return real(self, text, encoding="utf-8")

    monkeypatch.setattr(Path, "write_text", failing)
    with pytest.raises(OSError, match="No space"):
        main(
            [
                "deploy",
                "serve",
                str(model_paths["run"]),
                "--name",
                "x",
                "--out",
                str(tmp_path / "o"),
                *TOKEN,
            ]
        )
    assert written  # one file was written before the failure
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_is_kept_unless_forced(
    model_paths: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    code, _, err = _deploy(capsys, str(model_paths["run"]), "--name", "x", "--out", str(out))
    assert code == 2
    assert "--force" in err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    code, _, _ = _deploy(
        capsys, str(model_paths["run"]), "--name", "x", "--out", str(out), "--force"
    )
    assert code == 0
    assert not (out / "mine.txt").exists()
    assert (out / "kustomization.yaml").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_yaml_has_no_aliases() -> None:
    shared = {"a": 1}
    assert "&" not in kustomize.dump_yaml([{"x": shared, "y": shared}])
