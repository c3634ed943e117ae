"""The PPO gradient step in numpy, for small actor-critic MLPs on the CPU.

For a 64-64 network the arithmetic of one minibatch step is about 0.1 ms, while
torch's per-operator overhead puts an autograd step at several milliseconds on a
small CPU. This module writes the forward pass, the clipped objective's gradient
and Adam out by hand, on numpy views of the torch parameters (so checkpoints,
the rollout policy and serving see every step without a copy). It computes
exactly what :func:`fleetmind.algos.ppo.ppo_loss` with autograd computes; a test
checks the gradients against torch.

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
import torch
from torch import nn

from fleetmind.algos.actor_critic import ActorCritic

LOG_2PI = math.log(2.0 * math.pi)


def numpy_path_supported(net: nn.Module, activation: str) -> bool:
    """True for a plain :class:`ActorCritic` with tanh or relu hidden layers."""
    return type(net) is ActorCritic and activation in ("tanh", "relu")


def _linear_views(seq: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (m.weight.detach().numpy(), m.bias.detach().numpy())
        for m in seq
        if isinstance(m, nn.Linear)
    ]


class NumpyAdam:
    """Adam over numpy parameter views, updated in place (torch's defaults, eps given)."""

    def __init__(
        self, params: list[np.ndarray], eps: float, betas: tuple[float, float] = (0.9, 0.999)
    ) -> None:
        self.params = params
        self.eps = eps
        self.beta1, self.beta2 = betas
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray], lr: float) -> None:
        """One Adam update with step size ``lr``."""
        self.t += 1
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            p -= (lr / c1) * m / (np.sqrt(v / c2) + self.eps)

    def state_dict(self) -> dict[str, Any]:
        """Moments as tensors (``weights_only`` loadable) and the step count."""
        return {
            "t": self.t,
            "m": [torch.from_numpy(m.copy()) for m in self.m],
            "v": [torch.from_numpy(v.copy()) for v in self.v],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.t = int(state["t"])
        for dst, src in zip(self.m + self.v, list(state["m"]) + list(state["v"]), strict=True):
            dst[...] = src.numpy()


class NumpyPPOStep:
    """Forward, backward and Adam for one PPO minibatch on an :class:`ActorCritic`."""

    def __init__(self, net: ActorCritic, activation: str, eps: float) -> None:
        self.net = net
        self.relu = activation == "relu"
        self.actor = _linear_views(net.actor)
        self.critic = _linear_views(net.critic)
        self.log_std = net.log_std.detach().numpy()
        params = [a for layer in self.actor + self.critic for a in layer]
        if not net.discrete:
            params.append(self.log_std)
        self.adam = NumpyAdam(params, eps)

    def _act(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.maximum(x, 0.0) if self.relu else np.tanh(x)
        return out

    def _act_grad(self, h: np.ndarray, g: np.ndarray) -> np.ndarray:
        return g * (h > 0) if self.relu else g * (1.0 - h * h)

    def _forward(
        self, layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray
    ) -> list[np.ndarray]:
        acts = [x]
        for i, (w, b) in enumerate(layers):
            z = acts[-1] @ w.T + b
            acts.append(z if i == len(layers) - 1 else self._act(z))
        return acts

    def _backward(
        self, layers: list[tuple[np.ndarray, np.ndarray]], acts: list[np.ndarray], g: np.ndarray
    ) -> list[np.ndarray]:
        grads: list[np.ndarray] = []
        for i in range(len(layers) - 1, -1, -1):
            w, _ = layers[i]
            grads[:0] = [g.T @ acts[i], g.sum(axis=0)]
            if i > 0:
                g = self._act_grad(acts[i], g @ w)
        return grads

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
        norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
        if norm > cfg.max_grad_norm:
            scale = cfg.max_grad_norm / (norm + 1e-6)
            grads = [g * scale for g in grads]
        self.adam.step(grads, lr)

    def gradients(
        self, batch: Sequence[np.ndarray], cfg: Any
    ) -> tuple[list[np.ndarray], dict[str, float]]:
        """Gradients of the minibatch loss (one per parameter) and its diagnostics."""
        obs, actions, old_logp, adv, returns, old_values = batch[:6]
        decision = batch[6] if len(batch) > 6 else None
        n = obs.shape[0]
        a_acts = self._forward(self.actor, obs)
        c_acts = self._forward(self.critic, obs)
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
        grads = self._backward(self.actor, a_acts, g_head.astype(np.float32))
        grads += self._backward(
            self.critic, c_acts, (cfg.vf_coef * d_v)[:, None].astype(np.float32)
        )
        if not self.net.discrete:
            z2 = self._z2
            g_ent = cfg.ent_coef * float(weight.sum() > 0)
            g_log_std = (d_logp[:, None] * (z2 - 1.0)).sum(axis=0) - g_ent
            grads.append(g_log_std.astype(np.float32))
        return grads, {
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
