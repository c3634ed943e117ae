"""Does federation help? FedAvg over heterogeneous sites against one site alone and
against central training, at equal total environment steps.

Sites are CartPole variants (pole length, cart mass) drawn from the seed. Each
policy is scored by its mean return over every site's environment:

* ``federated``: ``fleetmind federate`` on Flower's simulation engine (FedAvg,
  every site every round, R rounds of K steps a site);
* ``single site``: one learner trained R*N*K steps on one site's env alone, for
  every site; the best of them is reported;
* ``central``: one learner trained R*N*K steps on a vector of every site's env (the
  non-private upper reference: all data in one place).

    .venv/bin/python benchmarks/federated.py [--sites 4] [--rounds 20] [--local-steps 2048]
        [--seeds 1 2 3 4 5] [--json FILE]

Prints one line per seed and the means with 95% intervals (t distribution).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from fleetmind.algos.checkpoint import CheckpointStore
from fleetmind.algos.loading import actuator_for
from fleetmind.algos.team_of_one import TeamOfOne
from fleetmind.envs.gym_team import GymTeamEnv
from fleetmind.envs.gym_vector import make_env
from fleetmind.envs.variants import set_params
from fleetmind.federated.global_run import create_run_dir
from fleetmind.federated.run import prepare, simulate
from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.site_training import SiteTrainer, Weights, algo_spec, get_weights
from fleetmind.runtime.parts import RunParts

EVAL_EPISODES = 20
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def score(settings: FederationSettings, weights: Weights, seed: int) -> float:
    """Mean return of ``weights`` over every site's env."""
    return float(
        np.mean(
            [
                np.mean(SiteTrainer(settings, site).evaluate(weights, EVAL_EPISODES, seed + site))
                for site in range(settings.sites)
            ]
        )
    )


def train_loop(parts: RunParts, settings: FederationSettings, steps: int, seed: int) -> Weights:
    """The ordinary collect-update loop for ``steps`` env steps."""
    _, algo_cfg = algo_spec(settings)
    rollout = int(getattr(algo_cfg, "rollout_steps", 32))
    learner = parts.learner
    learner.total_env_steps = steps
    collector = parts.collector(rollout, reward_gamma=None, seed=seed)
    policy = learner.rollout_policy()
    done = 0
    while done < steps:
        learner.update(collector.collect(policy, learner.version))
        done += rollout * parts.env.num_envs
    weights = get_weights(parts)
    parts.env.close()
    return weights


def central_parts(settings: FederationSettings, seed: int) -> RunParts:
    """One learner over a vector holding ``envs`` copies of every site's variant."""
    spec, algo_cfg = algo_spec(settings)

    def variant(params: dict[str, float]) -> Any:
        def make() -> Any:
            env = make_env(settings.env_id)
            set_params(env.unwrapped, settings.env_id, params)
            return env

        return make

    makers = [variant(p) for p in settings.site_params for _ in range(settings.envs)]
    env = GymTeamEnv(gym.vector.SyncVectorEnv(makers), settings.env_id)
    obs, act = env.spec.observation_spaces[0], env.spec.action_spaces[0]
    learner = TeamOfOne(spec.build(algo_cfg, obs, act, seed))
    return RunParts(env, learner, False, [None], None, [actuator_for(act)])


def federated(settings: FederationSettings, folder: Path) -> Weights:
    """Run the federation; the global weights of its last checkpoint."""
    settings.run_dir = folder / "federated"
    noise = prepare(settings)
    create_run_dir(settings, noise, force=True)
    simulate(settings)
    parts = SiteTrainer(settings, 0).build(1, 0)
    parts.learner.load_state_dict(
        CheckpointStore(settings.run_dir / "checkpoints").load_latest()["learner"]
    )
    return get_weights(parts)


def one_seed(args: argparse.Namespace, seed: int, folder: Path) -> dict[str, float]:
    settings = FederationSettings(
        env_id="CartPole-v1",
        sites=args.sites,
        rounds=args.rounds,
        local_steps=args.local_steps,
        seed=seed,
        eval_episodes=2,
    )
    fed = score(settings, federated(settings, folder), seed)
    total = args.rounds * args.sites * args.local_steps
    singles = [
        score(
            settings,
            train_loop(SiteTrainer(settings, s).build(settings.envs, seed), settings, total, seed),
            seed,
        )
        for s in range(settings.sites)
    ]
    central = score(
        settings, train_loop(central_parts(settings, seed), settings, total, seed), seed
    )
    return {"seed": seed, "federated": fed, "best_single_site": max(singles), "central": central}


def interval(values: list[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:7.1f}"
    half = T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / len(values) ** 0.5
    return f"{mean:7.1f} +/- {half:5.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--local-steps", type=int, default=2048)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row = one_seed(args, seed, Path(tmp) / str(seed))
            rows.append(row)
            print(json.dumps(row), flush=True)
    for key in ("federated", "best_single_site", "central"):
        print(f"{key:<18} {interval([r[key] for r in rows])}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
