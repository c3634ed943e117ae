"""The PPO gradient step in numpy, for small actor-critic MLPs on the CPU.

For a 64-64 network the arithmetic of one minibatch step is about 0.1 ms, while
torch's per-operator overhead puts an autograd step at several milliseconds on a
small CPU. This module writes the clipped objective's gradient out by hand and
runs the MLPs and Adam with the numpy kernels of :mod:`fleetmind.nn.numpy_mlp` and
:mod:`fleetmind.nn.numpy_adam` (the "paper" rounding), on numpy views of the torch
parameters (so checkpoints, the rollout policy and serving see every step without
a copy). It computes exactly what :func:`fleetmind.algos.ppo.learner.ppo_loss` with
autograd computes; a test checks the gradients against torch.

Loss per minibatch of N samples (advantages normalised within it)::

    L = mean_i max(-A_i r_i, -A_i clip(r_i)) + vf_coef * 0.5 * mean_i (V_i - R_i)^2
        - ent_coef * mean_i H_i,           r_i = exp(logp_i - old_logp_i)

A minibatch is ``[obs, actions, old_logp, adv, returns, old_values]`` plus,
optionally, ``decision`` flags: then the policy and entropy means (and the
advantage normalisation) run over the decision rows only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from fleetmind.algos.actor_critic.network import ActorCritic
from fleetmind.nn.numpy_adam import NumpyAdam
from fleetmind.nn.numpy_mlp import ACTIVATION_GRADS, backward, forward_cached

LOG_2PI = math.log(2.0 * math.pi)


def numpy_path_supported(net: nn.Module, activation: str) -> bool:
    """True for a plain :class:`ActorCritic` with tanh or relu hidden layers."""
    return type(net) is ActorCritic and activation in ACTIVATION_GRADS


class NumpyPPOStep:
    """Forward, backward and Adam for one PPO minibatch on an :class:`ActorCritic`."""

    def __init__(self, net: ActorCritic, activation: str, eps: float) -> None:
        self.net = net
        self.activation = activation
        view = net.numpy_view()
        self.actor, self.critic, self.log_std = view.actor, view.critic, view.log_std
        params = [a for layer in self.actor + self.critic for a in (layer[0].T, layer[1])]
        if not net.discrete:
            params.append(self.log_std)
        self.adam = NumpyAdam(params, eps, rounding="paper")
        grads = self.adam.grads
        self._actor_grads = grads[: 2 * len(self.actor)]
        self._critic_grads = grads[2 * len(self.actor) : 2 * (len(self.actor) + len(self.critic))]

    def step(self, batch: Sequence[np.ndarray], cfg: Any, lr: float) -> dict[str, float]:
        """One gradient step; returns the loss terms and diagnostics as floats."""
        grads, stats = self.gradients(batch, cfg)
        self.apply(grads, cfg, lr)
        return stats

    def zero_gradients(self) -> list[np.ndarray]:
        """Gradients of zeros, shaped like the parameters (a learner with no data)."""
        return [np.zeros_like(p) for p in self.adam.params]

    def apply(self, grads: list[np.ndarray], cfg: Any, lr: float) -> None:
        """Clip ``grads`` to ``cfg.max_grad_norm`` (global norm) and take an Adam step."""
        if grads is not self.adam.grads:
            self.adam.set_grads(grads)
        self.adam.clip_grad_norm(cfg.max_grad_norm)
        self.adam.step(lr)

    def gradients(
        self, batch: Sequence[np.ndarray], cfg: Any
    ) -> tuple[list[np.ndarray], dict[str, float]]:
        """Gradients of the minibatch loss (one per parameter) and its diagnostics.

        The gradients are :attr:`adam`'s buffers, overwritten by the next call."""
        obs, actions, old_logp, adv, returns, old_values = batch[:6]
        decision = batch[6] if len(batch) > 6 else None
        n = obs.shape[0]
        a_acts = forward_cached(self.actor, obs, self.activation)
        c_acts = forward_cached(self.critic, obs, self.activation)
        head, values = a_acts[-1], c_acts[-1][:, 0]
        logp, d_logp_d_head, entropy, d_ent = self._distribution(head, actions)
        weight = np.ones(n, np.float32) if decision is None else decision.astype(np.float32)
        n_pol = max(float(weight.sum()), 1.0)
        if cfg.norm_adv:
            chosen = adv if decision is None else adv[decision]
            if chosen.size > 1:
                adv = (adv - chosen.mean()) / (chosen.std(ddof=1) + 1e-8)
        log_ratio = logp - old_logp
        ratio = np.exp(log_ratio)
        clipped = np.clip(ratio, 1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef)
        unclipped_active = -adv * ratio >= -adv * clipped
        pg_loss = float((np.maximum(-adv * ratio, -adv * clipped) * weight).sum() / n_pol)
        d_logp = np.where(unclipped_active, -adv * ratio, 0.0) * weight / n_pol
        v_loss, d_v = self._value_terms(values, returns, old_values, cfg)
        g_head = d_logp[:, None] * d_logp_d_head - (cfg.ent_coef / n_pol) * d_ent * weight[:, None]
        g_value = (cfg.vf_coef * d_v)[:, None].astype(np.float32)
        backward(self.actor, a_acts, g_head.astype(np.float32), self.activation, self._actor_grads)
        backward(self.critic, c_acts, g_value, self.activation, self._critic_grads)
        if not self.net.discrete:
            z2 = self._z2
            g_ent = cfg.ent_coef * float(weight.sum() > 0)
            g_log_std = (d_logp[:, None] * (z2 - 1.0)).sum(axis=0) - g_ent
            self.adam.grads[-1][...] = g_log_std.astype(np.float32)
        return self.adam.grads, {
            "policy_loss": pg_loss,
            "value_loss": v_loss,
            "entropy": float((entropy * weight).sum() / n_pol),
            "approx_kl": float((((ratio - 1.0) - log_ratio) * weight).sum() / n_pol),
            "clip_fraction": float(((np.abs(ratio - 1.0) > cfg.clip_coef) * weight).sum() / n_pol),
        }

    @staticmethod
    def _value_terms(
        values: np.ndarray, returns: np.ndarray, old_values: np.ndarray, cfg: Any
    ) -> tuple[float, np.ndarray]:
        """The value loss over every row and its gradient with respect to the values."""
        n = values.shape[0]
        if cfg.clip_value:
            v_clip = old_values + np.clip(values - old_values, -cfg.clip_coef, cfg.clip_coef)
            use_clip = (v_clip - returns) ** 2 > (values - returns) ** 2
            v_loss = float(
                0.5 * np.maximum((values - returns) ** 2, (v_clip - returns) ** 2).mean()
            )
            inside = np.abs(values - old_values) < cfg.clip_coef
            return v_loss, np.where(use_clip, (v_clip - returns) * inside, values - returns) / n
        return float(0.5 * ((values - returns) ** 2).mean()), (values - returns) / n

    def _distribution(
        self, head: np.ndarray, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """log p(action), d log p / d head, entropy, d entropy / d head (per row)."""
        if self.net.discrete:
            shifted = head - head.max(axis=1, keepdims=True)
            logp_all = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            probs = np.exp(logp_all)
            idx = actions.astype(np.int64)
            logp = logp_all[np.arange(len(idx)), idx]
            d_logp = -probs
            d_logp[np.arange(len(idx)), idx] += 1.0
            entropy = -(probs * logp_all).sum(axis=1)
            d_ent = -probs * (logp_all + entropy[:, None])
            return logp, d_logp, entropy, d_ent
        inv_std = np.exp(-self.log_std)
        z = (actions - head) * inv_std
        self._z2 = z * z
        logp = (-0.5 * self._z2 - self.log_std - 0.5 * LOG_2PI).sum(axis=1)
        entropy = np.full(head.shape[0], float((self.log_std + 0.5 * (1.0 + LOG_2PI)).sum()))
        return logp, z * inv_std, entropy, np.zeros_like(head)
