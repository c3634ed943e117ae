"""``fleetmind site``: a SuperNode with the site's private env joins a SuperLink."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from flwr.common.config import parse_config_args
from tests.federated.procs import SRC, no_process_left, three_site_run

from fleetmind.cli.main import main
from fleetmind.federated.deployment import Deployment
from fleetmind.federated.pki import write_node_key
from fleetmind.federated.settings import parse_params
from fleetmind.federated.supernode import SiteNode, node_config
from fleetmind.runtime.run_dir import read_metrics


def test_the_node_config_carries_the_sites_env_as_flower_reads_it() -> None:
    text = node_config(3, "CartPole-v1", {"length": 0.4, "masscart": 2.0})
    config = parse_config_args([text])
    assert config == {
        "partition-id": 3,
        "env-id": "CartPole-v1",
        "env-params": "length=0.4,masscart=2.0",
    }
    assert parse_params(str(config["env-params"])) == {"length": 0.4, "masscart": 2.0}
    assert parse_config_args([node_config(0, None, None)]) == {"partition-id": 0}


def test_the_supernode_speaks_tls_with_its_key(tmp_path: Path) -> None:
    node = SiteNode("fed.example.org:9092", tmp_path / "ca.pem", tmp_path / "key", 1, port=9200)
    command = node.command()
    assert Path(command[0]).name == "flower-supernode"
    assert "--insecure" not in command
    for flag, value in (
        ("--superlink", "fed.example.org:9092"),
        ("--root-certificates", str(tmp_path / "ca.pem")),
        ("--auth-supernode-private-key", str(tmp_path / "key")),
        ("--node-config", "partition-id=1"),
        ("--port", "9200"),
    ):
        assert command[command.index(flag) + 1] == value
    assert node.environment()["PYTHONPATH"].split(os.pathsep)[0] == str(SRC)


@pytest.fixture
def credentials(tmp_path: Path) -> list[str]:
    (tmp_path / "ca.pem").write_text("not read before the SuperNode starts")
    write_node_key(tmp_path / "key")
    return ["--root-certificates", str(tmp_path / "ca.pem"), "--auth-key", str(tmp_path / "key")]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--superlink", "fed.example.org", "--site", "0"], "--superlink must be HOST:PORT"),
        (["--superlink", "h:1", "--site", "-1"], "--site must be >= 0"),
        (
            ["--superlink", "h:1", "--site", "0", "--env-id", "CartPole-v1", "--param", "colour=3"],
            "CartPole-v1 has no parameter 'colour'",
        ),
        (["--superlink", "h:1", "--site", "0", "--param", "length"], "must read name=value"),
        (
            ["--superlink", "h:1", "--site", "2", "--site-config", "SITES"],
            "--site 2 is not in",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    flags: list[str],
    message: str,
    credentials: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text("sites:\n  - {length: 0.4}\n  - {length: 0.8}\n")
    flags = [str(sites) if f == "SITES" else f for f in flags]
    assert main(["site", *credentials, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fleetmind site: error: ")
    assert message in err
    assert "\n" not in err


def test_a_missing_key_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ca.pem").write_text("")
    flags = ["--root-certificates", str(tmp_path / "ca.pem"), "--auth-key", str(tmp_path / "k")]
    assert main(["site", "--superlink", "h:1", "--site", "0", *flags]) == 2
    assert f"--auth-key {tmp_path / 'k'}: no such file" in capsys.readouterr().err


def test_the_site_config_entry_and_params_make_the_sites_env() -> None:
    from argparse import Namespace

    from fleetmind.cli.site_cmd import site_params

    assert site_params(Namespace(site_config=None, param=[], site=0)) is None
    args = Namespace(site_config=None, param=["length=0.7", "masscart=2"], site=0)
    assert site_params(args) == {"length": 0.7, "masscart": 2.0}


def join(fleet: Deployment, site: int, flags: list[str]) -> None:
    """``fleetmind site`` as another machine would run it, with a key the operator
    registered; returns once the SuperLink admitted it."""
    name = f"site-{site}"
    fleet.register(write_node_key(fleet.folder / name))
    command = [sys.executable, "-m", "fleetmind", "site", "--superlink"]
    command += [f"127.0.0.1:{fleet.port}", "--root-certificates", str(fleet.ca)]
    command += ["--auth-key", str(fleet.folder / name), "--site", str(site), *flags]
    process = fleet._start(name, command)
    deadline = time.monotonic() + 90
    while "SuperNode ID:" not in fleet.log_path(name).read_text(errors="replace"):
        assert process.poll() is None, fleet.log_path(name).read_text()
        assert time.monotonic() < deadline, "the site did not join in time"
        time.sleep(0.2)


@pytest.mark.slow
def test_sites_join_over_tls_with_their_own_env_and_the_run_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark, settings = three_site_run(tmp_path, monkeypatch, rounds=1)
    run_dir = tmp_path / "run"
    with Deployment(tmp_path / "fleet") as fleet:
        fleet.start_superlink()
        fleet.add_site(0)
        join(
            fleet, 1, ["--env-id", "CartPole-v1", "--param", "length=0.7", "--param", "masscart=2"]
        )
        join(fleet, 2, ["--env-id", "Acrobot-v1"])  # its own env: other spaces, it refuses
        summary = fleet.run(settings)
    assert summary["rounds"] == 1
    assert "site 2: its observation space is box(6,) float32" in summary["refused_sites"]["2"]
    [row] = read_metrics(run_dir)
    assert len(row["site_returns"]) == 2
    assert row["failed_sites"] == 0
    assert row["refused_sites"] == [2]
    assert no_process_left(mark)
