"""Local DP (Flower's LocalDpMod): each site clips and noises its own update, and the
run reports what that spends per site."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
from tests.federated.procs import run_federate

from fleetmind.cli.main import main
from fleetmind.federated.accountant import local_epsilon_spent, local_noise_std
from fleetmind.federated.client_app import build_client_app
from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.site_training import SiteTrainer, get_weights
from fleetmind.runtime.run_dir import read_metrics

pytestmark = pytest.mark.usefixtures("task_identity")


def test_each_update_is_within_its_epsilon_and_they_compose_sublinearly() -> None:
    assert local_noise_std(0.5, 1e-5, 2.0) == pytest.approx(4 * np.sqrt(2 * np.log(1.25e5)) / 0.5)
    spent = [local_epsilon_spent(1.0, 1e-5, k) for k in (0, 1, 2, 10, 50)]
    assert spent[0] == 0.0
    assert spent[1] <= 1.0  # one update: no more than the epsilon it was sent with
    assert spent == sorted(spent)
    assert spent[3] < 10 * 1.0  # tighter than adding up the updates' epsilons
    assert local_epsilon_spent(0.5, 1e-5, 10) < spent[3]


def train_reply(settings: FederationSettings, weights: dict[str, np.ndarray]) -> np.ndarray:
    content = RecordDict(
        {
            "arrays": ArrayRecord({k: Array(v) for k, v in weights.items()}),
            "config": ConfigRecord({"server-round": 1}),
        }
    )
    message = Message(content=content, dst_node_id=1, message_type=MessageType.TRAIN)
    context = Context(1, 1, {"partition-id": 0}, RecordDict(), {})
    out = build_client_app(settings)(message, context)
    assert not out.has_error(), out.error
    return np.concatenate([v.flatten() for v in out.content["arrays"].to_numpy_ndarrays()])  # type: ignore[union-attr]


def test_the_site_sends_its_update_clipped_and_noised_as_the_epsilon_asks() -> None:
    base = {"env_id": "CartPole-v1", "sites": 1, "local_steps": 64, "envs": 2}
    plain = FederationSettings(**base, site_params=[{}])  # type: ignore[arg-type]
    private = FederationSettings(
        **base,  # type: ignore[arg-type]
        site_params=[{}],
        local_dp_epsilon=1.0,
        local_dp_clip=0.1,
    )
    parts = SiteTrainer(plain, 0).build(1, seed=3)
    parts.env.close()
    start = get_weights(parts)
    flat_start = np.concatenate([v.flatten() for v in start.values()])
    update = train_reply(plain, start) - flat_start
    noised = train_reply(private, start) - flat_start
    assert np.linalg.norm(update) > 0.1  # so the clipping matters
    clipped = update * 0.1 / np.linalg.norm(update)
    noise = noised - clipped
    assert np.std(noise) == pytest.approx(local_noise_std(1.0, 1e-5, 0.1), rel=0.05)
    assert abs(np.mean(noise)) < 0.05


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--local-dp-epsilon", "2", "--local-dp-clip", "1"],
            "--local-dp-epsilon must be in (0, 1]",
        ),
        (["--local-dp-epsilon", "0.5"], "--local-dp-epsilon needs --local-dp-clip C > 0"),
        (["--local-dp-clip", "1"], "--local-dp-clip needs --local-dp-epsilon"),
        (
            ["--local-dp-epsilon", "0.5", "--local-dp-clip", "1", "--local-dp-delta", "1"],
            "--local-dp-delta must be in (0, 1)",
        ),
    ],
)
def test_bad_local_dp_settings_are_one_line_and_exit_2(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["federate", "CartPole-v1", "--run-dir", str(tmp_path / "run"), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err
    assert "\n" not in err


@pytest.mark.slow
def test_a_run_with_local_dp_reports_what_each_site_spent(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    flags = ["--sites", "2", "--rounds", "2", "--local-steps", "128", "--eval-episodes", "1"]
    summary = run_federate(run_dir, *flags, "--local-dp-epsilon", "0.8", "--local-dp-clip", "0.5")
    assert summary["local_epsilon"] == pytest.approx(local_epsilon_spent(0.8, 1e-5, 2))
    assert summary["local_epsilon_per_update"] == 0.8
    assert summary["local_noise_std"] == pytest.approx(local_noise_std(0.8, 1e-5, 0.5))
    assert summary["epsilon"] is None  # no central DP asked for
    rows = read_metrics(run_dir)
    assert [r["local_epsilon"] for r in rows] == pytest.approx(
        [local_epsilon_spent(0.8, 1e-5, k) for k in (1, 2)]
    )


def test_the_command_prints_what_a_site_spent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = {"rounds": 3, "sites": 2, "episode_return_mean": 20.0, "run_dir": "runs/x"}
    summary |= {"epsilon": None, "local_epsilon": 1.5, "local_delta": 1e-5}
    monkeypatch.setattr("fleetmind.federated.run.federate", lambda *a, **k: summary)
    assert main(["federate", "CartPole-v1", "--local-dp-epsilon", "1", "--local-dp-clip", "1"]) == 0
    assert "local epsilon 1.5 a site at delta 1e-05" in capsys.readouterr().out
