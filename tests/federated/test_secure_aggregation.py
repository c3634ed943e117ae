"""SecAgg+: the server gets the mean of the sites' weights, never one of them, to within
the quantisation; a site dropping out within the threshold leaves the round to the rest.

The protocol runs for real (Flower's workflow and mods) over a grid that hands each
message to its node's ClientApp in this process.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from tests.federated.procs import run_federate

from fleetmind.core.errors import ConfigError
from fleetmind.federated.accountant import epsilon_spent, local_noise_std
from fleetmind.federated.client_app import local_dp_when_asked
from fleetmind.federated.secure_aggregation import (
    FIT_CONFIG,
    fit_reply,
    quantisation_step,
    read_fit,
    secure_mods,
    secure_rounds,
)
from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.site_training import Weights
from fleetmind.runtime.evaluate import evaluate
from fleetmind.runtime.run_dir import read_metrics

SITES = 4
GLOBAL: Weights = {"w": np.zeros(50, np.float32), "b": np.zeros(3, np.float32)}


pytestmark = pytest.mark.usefixtures("task_identity")


def site_weights(site: int) -> Weights:
    rng = np.random.default_rng(site)
    return {k: rng.uniform(-1, 1, v.shape).astype(np.float32) for k, v in GLOBAL.items()}


def site_app(site: int, local_dp: FederationSettings | None = None) -> ClientApp:
    """A site whose training always ends at ``site_weights(site)`` (then noised with
    ``local_dp``'s local DP when given)."""
    inner = [] if local_dp is None else [local_dp_when_asked(lambda _c: local_dp)]
    app = ClientApp(mods=[*secure_mods(), *inner])

    @app.train()
    def train(message: Message, context: Context) -> Message:
        weights, _ = read_fit(message)
        assert list(weights) == list(GLOBAL)
        return fit_reply(message, site_weights(site))

    return app


@dataclass
class LoopbackGrid:
    """Hands each message to its node's ClientApp; ``drop`` nodes fail once they are
    asked for their masked weights (after sharing their keys)."""

    drop: frozenset[int] = frozenset()
    local_dp: FederationSettings | None = None

    def __post_init__(self) -> None:
        self.run = SimpleNamespace(run_id=1)
        self.nodes = {
            n: (
                site_app(n - 1, self.local_dp),
                Context(1, n, {"partition-id": n - 1}, RecordDict(), {}),
            )
            for n in range(1, SITES + 1)
        }

    def get_node_ids(self) -> list[int]:
        return list(self.nodes)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        replies = []
        for sent in messages:
            message = copy.deepcopy(sent)  # each node gets its own, as over the wire
            node = message.metadata.dst_node_id
            if node in self.drop and FIT_CONFIG in message.content:
                replies.append(Message(Error(code=5, reason="node gone"), reply_to=message))
                continue
            app, context = self.nodes[node]
            replies.append(app(message, context))
        return replies


def aggregate(grid: LoopbackGrid, **kw: object) -> tuple[Weights, int]:
    settings = FederationSettings(
        env_id="CartPole-v1",
        sites=SITES,
        rounds=1,
        secure_aggregation=True,
        **kw,  # type: ignore[arg-type]
    )
    settings.validate()
    out: list[tuple[Weights, int]] = []
    context = Context(1, 0, {}, RecordDict(), {})
    noise = settings.dp_noise
    secure_rounds(
        grid,
        context,
        settings,
        noise,
        GLOBAL,
        {},
        lambda _r, w, d: out.append((w, d)),  # type: ignore[arg-type]
    )
    [result] = out
    return result


def mean_of(sites: Iterable[int], clip: float | None = None) -> Weights:
    updates = []
    for site in sites:
        w = site_weights(site)
        norm = np.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in w.values()))
        scale = min(1.0, clip / norm) if clip else 1.0
        updates.append({k: v * scale for k, v in w.items()})
    return {k: np.mean([u[k] for u in updates], axis=0) for k in GLOBAL}


def assert_close(got: Weights, want: Weights, sites: int) -> None:
    assert list(got) == list(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=sites * quantisation_step())


def test_the_secure_aggregate_is_fedavg_within_the_quantisation() -> None:
    weights, dropouts = aggregate(LoopbackGrid())
    assert dropouts == 0
    assert_close(weights, mean_of(range(SITES)), SITES)
    assert not np.allclose(weights["w"], site_weights(0)["w"], atol=1e-3)


def test_a_site_dropping_out_within_the_threshold_leaves_the_round_to_the_rest() -> None:
    weights, dropouts = aggregate(LoopbackGrid(drop=frozenset({2})))
    assert dropouts == 1
    assert_close(weights, mean_of([0, 2, 3]), SITES)


def test_client_side_clipping_is_applied_before_masking() -> None:
    weights, _ = aggregate(LoopbackGrid(), dp_noise=0.0, dp_clip=0.5, dp_clipping="client")
    assert_close(weights, mean_of(range(SITES), clip=0.5), SITES)


def test_local_dp_noise_is_added_before_masking() -> None:
    local = FederationSettings(env_id="CartPole-v1", local_dp_epsilon=1.0, local_dp_clip=0.01)
    weights, _ = aggregate(LoopbackGrid(local_dp=local))
    want = mean_of(range(SITES), clip=0.01)
    noise = np.concatenate([(weights[k] - want[k]).ravel() for k in GLOBAL])
    expected = local_noise_std(1.0, 1e-5, 0.01) / np.sqrt(SITES)
    assert np.std(noise) == pytest.approx(expected, rel=0.3)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"strategy": "fedmedian"}, "--secure-aggregation needs --strategy fedavg or fedprox"),
        ({"dp_noise": 1.0, "dp_clip": 1.0}, "needs --dp-clipping client"),
        ({"sites": 1}, "needs at least 2 sites a round"),
        ({"secagg_threshold": 0.0}, "--secagg-threshold must be in (0, 1]"),
    ],
)
def test_settings_it_cannot_work_with_are_refused(kw: dict[str, object], message: str) -> None:
    settings = FederationSettings(env_id="CartPole-v1", sites=4, secure_aggregation=True)
    for key, value in kw.items():
        setattr(settings, key, value)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings.validate()


@pytest.mark.slow
def test_a_simulated_run_with_secure_aggregation_and_client_side_dp(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    flags = ["--sites", "3", "--rounds", "2", "--local-steps", "128", "--eval-episodes", "1"]
    flags += ["--secure-aggregation", "--dp-noise", "0.5", "--dp-clip", "1.0"]
    summary = run_federate(run_dir, *flags, "--dp-clipping", "client")
    assert summary["secure_aggregation"] is True
    assert summary["epsilon"] == pytest.approx(epsilon_spent(0.5, 2, 3, 3, 1e-5))
    rows = read_metrics(run_dir)
    assert [row["failed_sites"] for row in rows] == [0, 0]
    assert [len(row["site_returns"]) for row in rows] == [3, 3]
    assert rows[0]["update_norm_mean"] is None  # the server never saw an update
    assert evaluate(run_dir, episodes=2).episodes == 2
