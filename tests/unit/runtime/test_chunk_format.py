"""The one chunk format and codec, run on a single agent and on teams alike.

A single agent is a team of one: every case below runs on a CartPole PPO chunk
(one agent, normalised observations) and on team chunks of the tiny games (global
state or none, agent ids or none, heterogeneous agents).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import pytest
from tests.unit.marl.games import LeavingGame, MixedGame

from fleetmind.algos.loading import actuator_for
from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.algos.registry import get_algorithm
from fleetmind.algos.team.ippo import IPPOConfig
from fleetmind.algos.team.mappo import MAPPOConfig
from fleetmind.algos.team.ppo import MultiAgentPPOConfig, MultiAgentPPOLearner
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import InvalidInputError
from fleetmind.core.exchange import STAGES, Chunk, Episode
from fleetmind.core.normalizer import RunningMeanStd, concat_stats, split_stats
from fleetmind.envs.team import MultiAgentVectorEnv
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.training_codec import chunk_from_pb, chunk_pb, stats_pb, tensor_np, tensor_pb
from fleetmind.runtime.chunk_format import ChunkFormat, chunk_format
from fleetmind.runtime.parts import RunParts, build_parts

STEPS = 5
ENVS = 3
VERSION = 7
FIELDS = ("obs", "actions", "log_probs", "values", "rewards", "next_values", "terminated",
          "truncated", "valid")  # fmt: skip


def _parts(env_id: str, algo: str) -> RunParts:
    spec = get_algorithm(algo)
    return build_parts(env_id, spec, spec.config_cls(), envs=2, seed=0, normalize_obs=True)


def _single_agent() -> RunParts:
    spec = get_algorithm("ppo")
    return build_parts("CartPole-v1", spec, PPOConfig(), envs=ENVS, seed=0, normalize_obs=True)


def _team(game: type, config: MultiAgentPPOConfig) -> Callable[[], RunParts]:
    def build() -> RunParts:
        env = MultiAgentVectorEnv([game] * ENVS)
        learner = MultiAgentPPOLearner(config, env.spec, 0, "mappo")
        return RunParts(
            env=env,
            learner=learner,
            team=True,
            obs_stats=[None] * env.num_agents,
            state_stats=None,
            actuators=[actuator_for(s) for s in env.spec.action_spaces],
        )

    return build


RUNS = {
    "single-agent": _single_agent,
    "mappo-state": _team(LeavingGame, MAPPOConfig()),
    "ippo": _team(LeavingGame, IPPOConfig()),
    "mappo-no-id": _team(LeavingGame, MAPPOConfig(agent_id=False)),
    # One-hot observations of width 4 beside flat (2, 2) boxes; discrete and box actions.
    "heterogeneous": _team(MixedGame, IPPOConfig()),
}


@dataclass
class Run:
    """A run's chunk format and what its collector produced (model inputs)."""

    format: ChunkFormat
    sent: list[Trajectory]

    @property
    def agents(self) -> int:
        return len(self.sent)

    def chunk(self, sent: list[Trajectory] | None = None, **changes: object) -> Chunk:
        """The chunk an actor sends of ``sent`` (default: what was collected)."""
        own, state = self.format.split_inputs(self.sent if sent is None else sent)
        returns = tuple(float(10 * i + 1) for i in range(self.agents))
        chunk = Chunk(
            own,
            state,
            self.format.join(),
            [Episode(sum(returns), 4, returns)],
            {"env": 0.5},
            "s",
            1,
        )
        return replace(chunk, **changes)  # type: ignore[arg-type]


@pytest.fixture(params=list(RUNS))
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    parts = RUNS[request.param]()
    try:
        collector = parts.collector(STEPS, reward_gamma=None, seed=3)
        sent = collector.collect(parts.learner.rollout_policy(), VERSION)
        yield Run(chunk_format(parts, STEPS), sent)
    finally:
        parts.env.close()


def test_model_inputs_survive_the_wire_exactly(run: Run) -> None:
    chunk = run.chunk()
    got = chunk_from_pb(chunk_pb(chunk), run.format.contract)
    assert len(got.trajectories) == run.agents
    for received, want in zip(run.format.model_inputs(got), run.sent, strict=True):
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(received, name), getattr(want, name), name)
        assert received.policy_version == VERSION
        assert received.rewards.shape == (STEPS, ENVS)
    if chunk.state is None:
        assert got.state is None
    else:
        np.testing.assert_array_equal(got.state, chunk.state)
    assert got.episodes == chunk.episodes
    assert got.times == {stage: 0.5 if stage == "env" else 0.0 for stage in STAGES}
    assert (got.session_id, got.incarnation, got.env_steps) == ("s", 1, STEPS * ENVS)
    if chunk.obs_stats is None:
        assert got.obs_stats is None
    else:
        assert got.obs_stats is not None
        np.testing.assert_allclose(got.obs_stats.mean, chunk.obs_stats.mean)
        np.testing.assert_allclose(got.obs_stats.var, chunk.obs_stats.var)
        assert got.obs_stats.count == chunk.obs_stats.count


def test_received_chunks_concatenate_into_writable_per_agent_batches(run: Run) -> None:
    got = chunk_from_pb(chunk_pb(run.chunk()), run.format.contract)
    assert all(t.obs.flags.writeable for t in got.trajectories)
    both = run.format.per_agent([got, got])
    assert len(both) == run.agents
    for batch, want in zip(both, run.sent, strict=True):
        assert batch.num_envs == 2 * ENVS
        assert batch.obs.flags.writeable
        np.testing.assert_array_equal(batch.obs[:, ENVS:], want.obs)


def test_decision_flags_travel_with_a_chunk_when_present(run: Run) -> None:
    marked = [replace(t) for t in run.sent]
    decision = marked[0].valid.copy()  # a subset of the valid steps
    decision[1::2] = False
    marked[0].decision = decision
    contract = run.format.contract
    got = chunk_from_pb(chunk_pb(run.chunk(marked)), contract)
    first, *others = got.trajectories
    assert first.decision is not None
    np.testing.assert_array_equal(first.decision, decision)
    for agent in others:  # an agent without flags: every valid step decides
        assert agent.decision is not None
        np.testing.assert_array_equal(agent.decision, agent.valid)
    plain = chunk_from_pb(chunk_pb(run.chunk()), contract)
    assert all(t.decision is None for t in plain.trajectories)
    both = run.format.per_agent([got, plain])[0]
    assert both.decision is not None
    np.testing.assert_array_equal(both.decision[:, :ENVS], decision)
    np.testing.assert_array_equal(both.decision[:, ENVS:], plain.trajectories[0].valid)


def _replace_tensor(msg: pb.TrajectoryChunk, name: str, array: np.ndarray) -> None:
    tensors = [tensor_pb(array, name) if t.name == name else t for t in msg.tensors]
    del msg.tensors[:]
    msg.tensors.extend(tensors)


def _tensor(msg: pb.TrajectoryChunk, name: str) -> np.ndarray:
    return np.array(next(tensor_np(t) for t in msg.tensors if t.name == name))


def _refused(msg: pb.TrajectoryChunk, run: Run, words: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        chunk_from_pb(msg, run.format.contract)
    assert words in str(refused.value)


def test_a_malformed_decision_tensor_is_refused(run: Run) -> None:
    msg = chunk_pb(run.chunk())
    shape = [STEPS, ENVS, run.agents]
    raw = b"\0" * (4 * STEPS * ENVS * run.agents)
    msg.tensors.append(pb.Tensor(name="decision", datatype="FP32", shape=shape, raw=raw))
    _refused(msg, run, f"'decision' is FP32{shape}; expected BOOL{shape}")


def test_a_chunk_of_no_agents_or_the_wrong_team_size_is_refused(run: Run) -> None:
    agents = ", ".join(run.format.agents)
    for count in (0, run.agents + 1):
        msg = chunk_pb(run.chunk())
        msg.num_agents = count
        _refused(msg, run, f"num_agents={count} but this learner trains {run.agents} agent")
        _refused(msg, run, f"({agents})")
    if run.agents > 1:  # one agent's data left out altogether
        whole = run.chunk()
        short = chunk_pb(replace(whole, trajectories=whole.trajectories[:-1]))
        _refused(short, run, f"num_agents={run.agents - 1} but")


def test_every_agents_tensors_are_checked(run: Run) -> None:
    last = run.agents - 1
    msg = chunk_pb(run.chunk())
    obs = _tensor(msg, f"obs/{last}")
    obs[0, 0, ...] = np.nan
    _replace_tensor(msg, f"obs/{last}", obs)
    _refused(msg, run, f"'obs/{last}' holds NaN")

    msg = chunk_pb(run.chunk())
    kept = [t for t in msg.tensors if t.name != f"obs/{last}"]
    del msg.tensors[:]
    msg.tensors.extend(kept)
    _refused(msg, run, "must be exactly")

    msg = chunk_pb(run.chunk())
    _replace_tensor(msg, "values", np.zeros((STEPS, ENVS, run.agents + 1), np.float32))
    _refused(
        msg,
        run,
        f"tensor 'values' is FP32[{STEPS}, {ENVS}, {run.agents + 1}]; expected "
        f"FP32[{STEPS}, {ENVS}, {run.agents}]",
    )


def test_actions_out_of_range_are_refused_naming_the_agent(run: Run) -> None:
    contract = run.format.contract
    i = next(k for k, s in enumerate(contract.action_spaces) if s.kind == "discrete")
    msg = chunk_pb(run.chunk())
    actions = _tensor(msg, f"actions/{i}")
    actions[2, 1] = 99
    _replace_tensor(msg, f"actions/{i}", actions)
    n = contract.action_spaces[i].n
    _refused(msg, run, f"actions/{i} of agent {contract.agents[i]} must lie in [0, {n})")


def test_episodes_and_statistics_that_disagree_with_the_run_are_refused(run: Run) -> None:
    msg = chunk_pb(run.chunk())
    msg.episode_returns.append(1.0)
    msg.episode_lengths.append(10)
    _refused(msg, run, "agent_episode_returns holds")
    msg = chunk_pb(run.chunk())
    msg.episode_lengths.append(10)
    _refused(msg, run, "1 episode returns but 2 lengths")
    msg = chunk_pb(run.chunk())
    wrong = (run.format.contract.stats_dim or 0) + 1
    msg.obs_stats.CopyFrom(stats_pb(RunningMeanStd.from_data(np.zeros((3, wrong)))))
    if run.format.contract.stats_dim is None:
        _refused(msg, run, "obs_stats sent but this learner normalises no observation")
    else:
        _refused(msg, run, f"obs_stats: mean [{wrong}] and var [{wrong}] must both have")


@pytest.mark.parametrize(
    ("env_id", "algo"), [("CartPole-v1", "ppo"), ("mpe2/simple_spread_v3", "mappo")]
)
def test_an_empty_batch_has_the_shapes_of_a_collected_one(env_id: str, algo: str) -> None:
    parts = _parts(env_id, algo)
    try:
        chunks = chunk_format(parts, 8)
        collected = parts.collector(8, reward_gamma=None, seed=0).collect(
            parts.learner.rollout_policy()
        )
        empty = chunks.empty()
        assert len(empty) == len(collected) == len(parts.spec.agents)
        for got, want in zip(empty, collected, strict=True):
            assert got.obs.shape == (8, 0, *want.obs.shape[2:])
            assert got.actions.shape[2:] == want.actions.shape[2:]
            assert got.actions.dtype == want.actions.dtype
    finally:
        parts.env.close()


def test_team_statistics_split_into_each_agent_and_the_state_and_join_back() -> None:
    parts = _parts("mpe2/simple_spread_v3", "mappo")
    parts.env.close()
    chunks = chunk_format(parts, 8)
    assert chunks.team
    assert chunks.layout is not None
    rng = np.random.default_rng(0)
    for part in chunks.parts:
        if part is not None:
            part.update(rng.normal(size=(5, *part.shape)))
    joined = chunks.join()
    assert joined is not None
    split = chunks.split(joined)
    assert len(split) == len(chunks.parts)
    for part, piece in zip(chunks.parts, split, strict=True):
        if part is None:
            assert piece is None
            continue
        assert isinstance(piece, RunningMeanStd)
        np.testing.assert_allclose(piece.mean, part.mean)
        np.testing.assert_allclose(piece.var, part.var)


def test_a_single_agent_keeps_its_statistics_shape_and_no_agent_returns() -> None:
    parts = _parts("CartPole-v1", "ppo")
    parts.env.close()
    chunks = chunk_format(parts, 8)
    assert not chunks.team
    assert chunks.layout is None
    own = chunks.parts[0]
    assert own is not None
    own.update(np.random.default_rng(0).normal(size=(5, 4)))
    joined = chunks.join()
    assert joined is not None
    assert joined.shape == own.shape == (4,)
    np.testing.assert_allclose(joined.mean, own.mean)
    stats = RunningMeanStd.from_data(np.arange(8.0).reshape(2, 4))
    piece, state = chunks.split(stats)
    assert state is None
    assert piece is not None
    assert piece.shape == (4,)
    np.testing.assert_allclose(piece.mean, stats.mean)
    assert piece.count == stats.count


def test_team_statistics_vector_merges_exactly() -> None:
    rng = np.random.default_rng(0)
    rows = [rng.standard_normal((6, d)) for d in (2, 3)]
    more = [rng.standard_normal((4, d)) for d in (2, 3)]
    parts: list[RunningMeanStd | None] = [RunningMeanStd.from_data(r) for r in rows]
    parts.insert(1, None)  # an agent whose observations are not normalised
    merged = concat_stats(parts)
    assert merged is not None
    delta = concat_stats(
        [RunningMeanStd.from_data(more[0]), None, RunningMeanStd.from_data(more[1])]
    )
    assert delta is not None
    merged.merge(delta)
    split = split_stats(merged, parts)
    assert split[1] is None
    for got, a, b in zip([split[0], split[2]], rows, more, strict=True):
        assert got is not None
        both = np.concatenate([a, b])
        np.testing.assert_allclose(got.mean, both.mean(axis=0))
        np.testing.assert_allclose(got.var, both.var(axis=0))
        assert got.count == 10
    with pytest.raises(InvalidInputError, match="hold 4 values; this run normalises 5"):
        split_stats(RunningMeanStd((4,)), parts)
