"""IMPALA: actor-critic learning from off-policy actors with V-trace correction.

One update reads top to bottom::

    log_pi, entropy, V = net(obs, actions)                  # current policy and critic
    vs, adv = vtrace(log_pi - log_mu, rewards, V, V_next)   # off-policy targets
    loss = -(adv * log_pi) + vf_coef * (vs - V)^2 / 2 - ent_coef * entropy
    one clipped gradient step

``V_next`` uses the learner's critic inside the chunk and the actor's value of the
observation after an episode end or after the last step (the chunk does not carry
that observation). Used by ``fleetmind train --mode async``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fleetmind.algos.actor_critic.network import (
    ActorCriticLearnerBase,
    check_supported_action,
)
from fleetmind.algos.actor_critic.shared_step import SharedSchedule, average
from fleetmind.algos.base import AlgoSpec
from fleetmind.algos.impala.config import ImpalaConfig
from fleetmind.algos.impala.vtrace import vtrace
from fleetmind.core.batch import Trajectory
from fleetmind.core.learning import SumReducer
from fleetmind.core.spaces import SpaceSpec

STAT_KEYS = ("policy_loss", "value_loss", "entropy", "rho_mean", "rho_clipped_fraction")
"""Metrics of one update, in the order a group averages them."""


class ImpalaLearner(ActorCriticLearnerBase):
    """Owns the actor-critic; one :meth:`update` per batch of (possibly stale) chunks."""

    config: ImpalaConfig

    def __init__(
        self, config: ImpalaConfig, observation_space: SpaceSpec, action_space: SpaceSpec, seed: int
    ) -> None:
        self._init_actor_critic(config, observation_space, action_space, seed)
        self.reducer: SumReducer | None = None
        """Set when several learners train together: gradients are averaged across them."""

    def update(self, trajectory: Trajectory) -> dict[str, float]:
        """V-trace actor-critic steps on ``trajectory``; bumps :attr:`version`."""
        env_steps = int(trajectory.valid.size)
        if self.reducer is not None:
            samples = int(trajectory.valid.sum())
            env_steps = SharedSchedule.agree(self.reducer, samples, env_steps, 1).total_env_steps
        if trajectory.num_envs == 0:  # a learner of a group without data this time
            stats = dict.fromkeys(STAT_KEYS, 0.0)
            for _ in range(self.config.sgd_steps):
                self._step([torch.zeros_like(p) for p in self._trainable()], stats, 0)
        else:
            stats = self._v_trace_steps(trajectory)
        self.version += 1
        self.env_steps += env_steps
        return stats

    def _trainable(self) -> list[nn.Parameter]:
        return [p for p in self.net.parameters() if p.requires_grad]

    def _step(self, grads: list[torch.Tensor], stats: dict[str, float], weight: int) -> None:
        """Average ``grads`` over the group (if any), clip, and step the optimizer."""
        if self.reducer is not None:
            arrays, stats_avg = average(self.reducer, [g.numpy() for g in grads], stats, weight)
            grads = [torch.from_numpy(a) for a in arrays]
            stats.update(stats_avg)
        for p, g in zip(self._trainable(), grads, strict=True):
            p.grad = g
        nn.utils.clip_grad_norm_(self.net.parameters(), self.config.max_grad_norm)
        self.optimizer.step()

    def _v_trace_steps(self, trajectory: Trajectory) -> dict[str, float]:
        cfg = self.config
        steps, envs = trajectory.num_steps, trajectory.num_envs
        obs = torch.from_numpy(trajectory.obs.reshape(steps * envs, -1))
        actions = torch.from_numpy(
            trajectory.actions.reshape(steps * envs, *trajectory.actions.shape[2:])
        )
        valid = torch.from_numpy(trajectory.valid.reshape(-1).astype(np.float32))
        stats: dict[str, float] = {}
        for _ in range(cfg.sgd_steps):
            logp, entropy, values = self.net.evaluate(obs, actions)
            v = values.detach().numpy().reshape(steps, envs)
            continues = ~(trajectory.terminated | trajectory.truncated)
            next_v = trajectory.next_values.copy()
            next_v[:-1] = np.where(continues[:-1], v[1:], trajectory.next_values[:-1])
            log_rhos = logp.detach().numpy().reshape(steps, envs) - trajectory.log_probs
            vs, adv = vtrace(
                log_rhos, trajectory.rewards, v, next_v, trajectory.terminated,
                trajectory.truncated, cfg.gamma, cfg.rho_bar, cfg.c_bar,
            )  # fmt: skip
            adv_t = torch.from_numpy(adv.reshape(-1))
            vs_t = torch.from_numpy(vs.reshape(-1))
            count = valid.sum().clamp(min=1.0)
            pg_loss = -(adv_t * logp * valid).sum() / count
            v_loss = 0.5 * (((vs_t - values) ** 2) * valid).sum() / count
            ent = (entropy * valid).sum() / count
            loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * ent
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            rho = np.exp(log_rhos)
            stats = {
                "policy_loss": float(pg_loss.detach()),
                "value_loss": float(v_loss.detach()),
                "entropy": float(ent.detach()),
                "rho_mean": float(rho.mean()),
                "rho_clipped_fraction": float((rho > cfg.rho_bar).mean()),
            }
            grads = [
                p.grad if p.grad is not None else torch.zeros_like(p) for p in self._trainable()
            ]
            self._step(grads, stats, int(trajectory.valid.sum()))
        return stats


def _build(config: Any, obs_space: SpaceSpec, act_space: SpaceSpec, seed: int) -> ImpalaLearner:
    return ImpalaLearner(config, obs_space, act_space, seed)


SPEC = AlgoSpec(
    name="impala",
    summary="IMPALA: V-trace actor-critic for asynchronous actors (--mode async)",
    config_cls=ImpalaConfig,
    build=_build,
    rollout_length=lambda cfg: int(cfg.rollout_steps),
    supports_action=check_supported_action,
)


__all__ = ["SPEC", "ImpalaConfig", "ImpalaLearner"]
