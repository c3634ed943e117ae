"""Proximal Policy Optimization (clipped objective, GAE).

One update reads top to bottom::

    advantages, returns = compute_gae(trajectory, gamma, gae_lambda)
    for epoch in range(update_epochs):
        for minibatch in shuffled(valid steps):
            loss = ppo_loss(net, minibatch, ...)     # clipped policy + value + entropy
            # (policy and entropy terms only over the steps marked as decisions)
            loss.backward(); clip_grad_norm_; optimizer.step()

The learner anneals its learning rate linearly over ``total_env_steps`` when asked,
normalises advantages per minibatch, and optionally clips the value update. For the
plain actor-critic on a CPU the same step runs in numpy
(:mod:`fleetmind.algos.ppo.numpy_step`, ``backend``), which is several times faster for
small networks; :func:`ppo_loss` is the autograd form of that objective.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fleetmind.algos.actor_critic.network import (
    ActorCritic,
    ActorCriticLearnerBase,
    check_supported_action,
)
from fleetmind.algos.actor_critic.shared_step import SharedSchedule, average
from fleetmind.algos.base import AlgoSpec
from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.algos.ppo.numpy_step import NumpyPPOStep, numpy_path_supported
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import ConfigError
from fleetmind.core.learning import SumReducer
from fleetmind.core.spaces import SpaceSpec


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates and returns for ``[T, E]`` arrays.

    ``next_values[t]`` is the value of the observation after step ``t``: the final
    observation when the episode ended there. A terminal step does not bootstrap;
    a truncated one does. The recursion stops at every episode end.
    """
    steps = rewards.shape[0]
    advantages = np.zeros_like(rewards, dtype=np.float32)
    not_terminal = 1.0 - terminated.astype(np.float32)
    continues = 1.0 - (terminated | truncated).astype(np.float32)
    deltas = rewards + gamma * next_values * not_terminal - values
    last = np.zeros(rewards.shape[1], dtype=np.float32)
    for t in range(steps - 1, -1, -1):
        last = deltas[t] + gamma * gae_lambda * continues[t] * last
        advantages[t] = last
    return advantages, advantages + values


def _mean(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``x``, over the rows where ``weight`` is 1 when a weight is given."""
    if weight is None:
        return x.mean()
    return (x * weight).sum() / weight.sum().clamp(min=1.0)


def ppo_loss(
    net: ActorCritic,
    obs: torch.Tensor,
    actions: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    old_values: torch.Tensor,
    config: PPOConfig,
    decision: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped PPO objective on one minibatch; returns ``(loss, stats)``.

    ``decision`` (bool per row) keeps the rows whose action could change nothing
    out of the policy loss, the entropy and the advantage normalisation; the value
    loss covers every row.
    """
    log_probs, entropy, values = net.evaluate(obs, actions)
    log_ratio = log_probs - old_log_probs
    ratio = log_ratio.exp()
    weight = None if decision is None else decision.to(ratio.dtype)
    if config.norm_adv:
        chosen = advantages if decision is None else advantages[decision]
        if chosen.numel() > 1:
            advantages = (advantages - chosen.mean()) / (chosen.std() + 1e-8)
    pg_loss = _mean(
        torch.max(
            -advantages * ratio,
            -advantages * ratio.clamp(1.0 - config.clip_coef, 1.0 + config.clip_coef),
        ),
        weight,
    )
    if config.clip_value:
        clipped = old_values + (values - old_values).clamp(-config.clip_coef, config.clip_coef)
        v_loss = 0.5 * torch.max((values - returns) ** 2, (clipped - returns) ** 2).mean()
    else:
        v_loss = 0.5 * ((values - returns) ** 2).mean()
    ent = _mean(entropy, weight)
    loss = pg_loss - config.ent_coef * ent + config.vf_coef * v_loss
    with torch.no_grad():
        stats = {
            "policy_loss": pg_loss.detach(),
            "value_loss": v_loss.detach(),
            "entropy": ent.detach(),
            "approx_kl": _mean((ratio - 1.0) - log_ratio, weight),
            "clip_fraction": _mean(((ratio - 1.0).abs() > config.clip_coef).float(), weight),
        }
    return loss, stats


class PPOLearner(ActorCriticLearnerBase):
    """Owns the actor-critic and its optimizer; one :meth:`update` per trajectory."""

    config: PPOConfig

    def __init__(
        self, config: PPOConfig, observation_space: SpaceSpec, action_space: SpaceSpec, seed: int
    ) -> None:
        self._init_actor_critic(config, observation_space, action_space, seed)
        self._numpy: NumpyPPOStep | None = None
        self.reducer: SumReducer | None = None
        """Set when several learners train together: gradients are averaged across them."""

    def _learning_rate(self) -> float:
        lr = self.config.learning_rate
        if self.config.anneal_lr and self.total_env_steps:
            lr *= max(0.0, 1.0 - self.env_steps / self.total_env_steps)
        return max(lr, 1e-8)

    def update(self, trajectory: Trajectory) -> dict[str, float]:
        """One PPO update on ``trajectory``; bumps :attr:`version`."""
        data = self._flat_data(trajectory)
        lr = self._learning_rate()
        env_steps = int(trajectory.valid.size)
        if self.reducer is not None:
            totals, count, env_steps = self._shared_epochs(data, env_steps, lr)
        else:
            totals, count = self._local_epochs(data, lr)
        return self._finish(totals, count, env_steps, lr, data[5], data[4])

    def _flat_data(self, trajectory: Trajectory) -> list[torch.Tensor]:
        """The valid steps as flat tensors: obs, actions, old log-probs, advantages,
        returns, old values and, when the trajectory marks decisions, the decision flags."""
        cfg = self.config
        adv, ret = compute_gae(
            trajectory.rewards,
            trajectory.values,
            trajectory.next_values,
            trajectory.terminated,
            trajectory.truncated,
            cfg.gamma,
            cfg.gae_lambda,
        )
        mask = trajectory.valid.reshape(-1)
        arrays = [
            trajectory.obs.reshape(-1, *trajectory.obs.shape[2:]),
            trajectory.actions.reshape(-1, *trajectory.actions.shape[2:]),
            trajectory.log_probs.reshape(-1),
            adv.reshape(-1),
            ret.reshape(-1).astype(np.float32),
            trajectory.values.reshape(-1),
        ]
        if trajectory.decision is not None:
            arrays.append(trajectory.decision.reshape(-1))
        return [torch.from_numpy(a[mask]) for a in arrays]

    def _local_epochs(self, data: list[torch.Tensor], lr: float) -> tuple[dict[str, float], int]:
        """The epochs of one update on this learner's data alone."""
        cfg = self.config
        n = int(data[0].shape[0])
        mb = min(cfg.minibatch_size, n)
        numpy_step = self._numpy_step()
        totals: dict[str, float] = {}
        count = 0
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(n)
            for start in range(0, n - mb + 1, mb):
                part = [t[perm[start : start + mb]] for t in data]
                if numpy_step is not None:
                    stats_f = numpy_step.step([p.numpy() for p in part], cfg, lr)
                else:
                    stats_f = self._torch_step(part)
                for key, value in stats_f.items():
                    totals[key] = totals.get(key, 0.0) + value
                count += 1
            if cfg.target_kl is not None and totals["approx_kl"] / count > cfg.target_kl:
                break
        return totals, count

    def _finish(
        self,
        totals: dict[str, float],
        count: int,
        env_steps: int,
        lr: float,
        old_values: torch.Tensor,
        ret_t: torch.Tensor,
    ) -> dict[str, float]:
        self.version += 1
        self.env_steps += env_steps
        metrics = {k: v / max(count, 1) for k, v in totals.items()}
        metrics["learning_rate"] = lr
        metrics["explained_variance"] = explained_variance(old_values.numpy(), ret_t.numpy())
        return metrics

    def _shared_epochs(
        self, data: list[torch.Tensor], env_steps: int, lr: float
    ) -> tuple[dict[str, float], int, int]:
        """The epochs of one update with gradients averaged over every learner."""
        cfg = self.config
        reducer = self.reducer
        if reducer is None:
            raise RuntimeError("_shared_epochs needs a reducer")
        n = int(data[0].shape[0])
        schedule = SharedSchedule.agree(reducer, n, env_steps, cfg.minibatch_size)
        numpy_step = self._numpy_step()
        totals: dict[str, float] = {}
        count = 0
        for _ in range(cfg.update_epochs):
            for idx in schedule.parts(torch.randperm(n).numpy()):
                grads, stats = self._local_gradients(numpy_step, [t[idx] for t in data])
                grads, stats = average(reducer, grads, stats, len(idx))
                self._apply(numpy_step, grads, lr)
                for key, value in stats.items():
                    totals[key] = totals.get(key, 0.0) + value
                count += 1
            if cfg.target_kl is not None and totals["approx_kl"] / count > cfg.target_kl:
                break  # the same decision everywhere: the statistics are averaged
        return totals, count, schedule.total_env_steps

    def _trainable(self) -> list[nn.Parameter]:
        return [p for p in self.net.parameters() if p.requires_grad]

    def _local_gradients(
        self, numpy_step: NumpyPPOStep | None, part: list[torch.Tensor]
    ) -> tuple[list[np.ndarray], dict[str, float]]:
        """Gradients of this learner's share of a minibatch (zeros for an empty share)."""
        if part[0].shape[0] == 0:
            keys = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
            zeros = (
                numpy_step.zero_gradients()
                if numpy_step is not None
                else [np.zeros(tuple(p.shape), np.float32) for p in self._trainable()]
            )
            return zeros, dict.fromkeys(keys, 0.0)
        if numpy_step is not None:
            return numpy_step.gradients([p.numpy() for p in part], self.config)
        loss, stats = self._part_loss(part)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        grads = [
            p.grad.numpy().copy() if p.grad is not None else np.zeros(tuple(p.shape), np.float32)
            for p in self._trainable()
        ]
        return grads, {key: float(value) for key, value in stats.items()}

    def _apply(self, numpy_step: NumpyPPOStep | None, grads: list[np.ndarray], lr: float) -> None:
        """Clip the (averaged) gradients and step the optimizer."""
        if numpy_step is not None:
            numpy_step.apply(grads, self.config, lr)
            return
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        for p, g in zip(self._trainable(), grads, strict=True):
            p.grad = torch.from_numpy(g)
        nn.utils.clip_grad_norm_(self.net.parameters(), self.config.max_grad_norm)
        self.optimizer.step()

    def _part_loss(self, part: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:func:`ppo_loss` on a minibatch in the layout of :meth:`_flat_data`."""
        obs, actions, old_logp, adv, returns, old_values = part[:6]
        decision = part[6] if len(part) > 6 else None
        return ppo_loss(
            self.net, obs, actions, old_logp, adv, returns, old_values, self.config, decision
        )

    def _torch_step(self, part: list[torch.Tensor]) -> dict[str, float]:
        """One autograd minibatch step (any network, any activation) on the tensors of
        :meth:`_flat_data`."""
        for group in self.optimizer.param_groups:
            group["lr"] = self._learning_rate()
        loss, stats = self._part_loss(part)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(self.net.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        return {key: float(value) for key, value in stats.items()}

    def _numpy_step(self) -> NumpyPPOStep | None:
        """The numpy gradient step when the config and the network allow it."""
        backend = self.config.backend
        supported = numpy_path_supported(self.net, self.config.activation)
        if backend == "numpy" and not supported:
            raise ConfigError(
                "ppo.backend numpy needs the plain actor-critic with tanh or relu; use torch"
            )
        if backend == "torch" or not supported:
            return None
        if self._numpy is None or self._numpy.net is not self.net:
            self._numpy = NumpyPPOStep(self.net, self.config.activation, eps=1e-5)
        return self._numpy

    def state_dict(self) -> dict[str, Any]:
        """The base state plus the numpy optimizer's moments when that path ran."""
        state = super().state_dict()
        if self._numpy is not None:
            state["numpy_adam"] = self._numpy.adam.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        super().load_state_dict(state)
        numpy_step = self._numpy_step() if "numpy_adam" in state else None
        if numpy_step is not None:
            numpy_step.adam.load_state_dict(state["numpy_adam"])


def explained_variance(predicted: np.ndarray, target: np.ndarray) -> float:
    """1 - Var[target - predicted] / Var[target]; nan when the target is constant."""
    if target.size == 0:
        return float("nan")
    var = float(np.var(target))
    return float("nan") if var == 0.0 else 1.0 - float(np.var(target - predicted)) / var


def _build(config: Any, obs_space: SpaceSpec, act_space: SpaceSpec, seed: int) -> PPOLearner:
    return PPOLearner(config, obs_space, act_space, seed)


SPEC = AlgoSpec(
    name="ppo",
    summary="Proximal Policy Optimization (discrete and continuous actions)",
    config_cls=PPOConfig,
    build=_build,
    rollout_length=lambda cfg: int(cfg.rollout_steps),
    supports_action=check_supported_action,
)
