"""The DQN gradient step in numpy, for MLP Q-networks on the CPU.

With RL-Zoo's CartPole settings a DQN round is 128 gradient steps of a 4-256-256-2
network on 64 transitions. The arithmetic of one step is a fraction of a
millisecond, while torch's per-operator overhead puts an autograd step plus Adam at
several. This module writes the forward pass, the Huber TD loss's gradient,
gradient-norm clipping and Adam out by hand. It works on numpy views of the torch
parameters *and of the torch Adam's own state* (``step``, ``exp_avg``,
``exp_avg_sq``), so checkpoints, evaluation and serving see every step, and a run
may resume on either backend. It computes what
:meth:`fleetmind.algos.dqn.DQNLearner` computes with autograd; a test checks the
parameters step for step against torch.

Per minibatch of B transitions with importance weights w (all ones without PER)::

    y_i   = R_i + d_i * Q_target(s'_i, argmax_a Q(s'_i, a))    (double)
          = R_i + d_i * max_a Q_target(s'_i, a)                 (vanilla)
    L     = mean_i w_i * huber(Q(s_i, a_i) - y_i)
    dL/dQ(s_i, a_i) = w_i * clip(Q(s_i, a_i) - y_i, -1, 1) / B
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from fleetmind.algos.q_network import QNetwork
from fleetmind.algos.replay import SampledBatch


def numpy_unsupported_reason(net: nn.Module) -> str | None:
    """Why the numpy step cannot train ``net``, or None when it can."""
    if type(net) is not QNetwork:
        return f"it runs the built-in MLP Q-network only, not {type(net).__name__}"
    for name, param in net.named_parameters():
        if param.dtype != torch.float32 or param.device.type != "cpu":
            return (
                f"it needs float32 parameters on the CPU; {name} is {param.dtype} on {param.device}"
            )
    return None


def _linear(layer: nn.Linear) -> tuple[np.ndarray, np.ndarray]:
    return layer.weight.detach().numpy(), layer.bias.detach().numpy()


class NumpyQNetwork:
    """Forward and backward passes of a :class:`QNetwork` on views of its parameters."""

    def __init__(self, net: QNetwork) -> None:
        self.net = net
        self.hidden = [_linear(m) for m in net.body if isinstance(m, nn.Linear)]
        self.advantage = _linear(net.advantage)
        self.value = _linear(net.value) if net.value is not None else None
        self.eye = np.eye(net.one_hot, dtype=np.float32) if net.one_hot is not None else None
        heads = [self.advantage] if self.value is None else [self.advantage, self.value]
        self.params = [a for layer in (*self.hidden, *heads) for a in layer]
        """Views in the order of ``net.parameters()``."""

    def inputs(self, obs: np.ndarray) -> np.ndarray:
        """Model inputs as the network sees them: one-hot or flattened float32 rows."""
        if self.eye is not None:
            return self.eye[np.asarray(obs).reshape(-1).astype(np.int64)]
        return np.asarray(obs).reshape(len(obs), -1).astype(np.float32, copy=False)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """``Q`` of input rows ``x``, and the layer inputs the backward pass needs."""
        acts = [x]
        for w, b in self.hidden:
            h = acts[-1] @ w.T
            h += b
            np.maximum(h, 0.0, out=h)
            acts.append(h)
        features = acts[-1]
        w_a, b_a = self.advantage
        q: np.ndarray = features @ w_a.T + b_a
        if self.value is not None:
            w_v, b_v = self.value
            q += (features @ w_v.T + b_v) - q.mean(axis=1, keepdims=True)
        return q, acts

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """``[B, num_actions]`` action values of raw observations."""
        return self.forward(self.inputs(obs))[0]

    def backward(self, acts: list[np.ndarray], g_q: np.ndarray) -> list[np.ndarray]:
        """Gradients (order of :attr:`params`) given ``dL/dQ`` for the first rows of ``acts``."""
        rows = len(g_q)
        features = acts[-1][:rows]
        w_a, _ = self.advantage
        if self.value is None:
            heads = [g_q.T @ features, g_q.sum(axis=0)]
            g = g_q @ w_a
        else:
            w_v, _ = self.value
            g_adv = g_q - g_q.mean(axis=1, keepdims=True)
            g_val = g_q.sum(axis=1, keepdims=True)
            heads = [g_adv.T @ features, g_adv.sum(axis=0), g_val.T @ features, g_val.sum(axis=0)]
            g = g_adv @ w_a + g_val @ w_v
        grads: list[np.ndarray] = []
        for i in range(len(self.hidden) - 1, -1, -1):
            g *= acts[i + 1][:rows] > 0
            grads[:0] = [g.T @ acts[i][:rows], g.sum(axis=0)]
            if i > 0:
                g = g @ self.hidden[i][0]
        return grads + heads


class TorchAdamViews:
    """Adam in numpy, on views of a ``torch.optim.Adam``'s parameters and state.

    The arithmetic is torch's (bias corrections, ``eps`` added after the square
    root); the state lives in the torch optimizer, so its ``state_dict`` stays the
    checkpoint of either backend.

    Every ``FLUSH_EVERY`` steps, moments below ``TINY`` are set to zero. The first
    moment of a parameter whose gradient stays zero (a dead ReLU unit) decays by
    ``beta1`` a step into subnormal floats, which made this update five times slower
    on x86 in a CartPole run; a moment that small moves its parameter by less than
    ``lr * 1e-24``, far below float32 resolution, so the result does not change.
    """

    TINY = 1e-32
    FLUSH_EVERY = 32

    def __init__(self, optimizer: torch.optim.Adam, params: list[nn.Parameter]) -> None:
        group = optimizer.param_groups[0]
        if len(optimizer.param_groups) != 1 or group["weight_decay"] or group["amsgrad"]:
            raise ValueError("TorchAdamViews supports one parameter group of plain Adam")
        self.group = group
        states = [self._state(optimizer, p) for p in params]
        self.params = [p.detach().numpy() for p in params]
        self.steps = [s["step"].numpy() for s in states]
        self.m = [s["exp_avg"].numpy() for s in states]
        self.v = [s["exp_avg_sq"].numpy() for s in states]
        self.scratch = [np.empty_like(p) for p in self.params]

    @staticmethod
    def _state(optimizer: torch.optim.Adam, param: nn.Parameter) -> dict[str, torch.Tensor]:
        state: dict[str, torch.Tensor] = optimizer.state[param]
        if not state:  # what torch's Adam creates on its first step
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state

    def step(self, grads: list[np.ndarray]) -> None:
        """One Adam update of every parameter with its gradient."""
        beta1, beta2 = self.group["betas"]
        lr, eps = float(self.group["lr"]), float(self.group["eps"])
        for count in self.steps:
            count += 1.0
        t = float(self.steps[0])
        step_size = lr / (1.0 - beta1**t)
        inv_c2_sqrt = 1.0 / math.sqrt(1.0 - beta2**t)
        for p, g, m, v, tmp in zip(self.params, grads, self.m, self.v, self.scratch, strict=True):
            m *= beta1
            np.multiply(g, 1.0 - beta1, out=tmp)
            m += tmp
            v *= beta2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - beta2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp *= inv_c2_sqrt
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp
            if t % self.FLUSH_EVERY == 0:
                for moment in (m, v):
                    np.copyto(moment, 0.0, where=np.abs(moment) < self.TINY)


def clip_grad_norm(grads: list[np.ndarray], max_norm: float) -> None:
    """Scale ``grads`` in place as ``torch.nn.utils.clip_grad_norm_`` does."""
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= coef


class NumpyDQNStep:
    """One Adam step on the weighted Huber TD loss of a minibatch, all in numpy."""

    def __init__(
        self,
        net: QNetwork,
        optimizer: torch.optim.Adam,
        double: bool,
        max_grad_norm: float | None,
    ) -> None:
        self.q = NumpyQNetwork(net)
        self.adam = TorchAdamViews(optimizer, list(net.parameters()))
        self.double = double
        self.max_grad_norm = max_grad_norm

    def step(self, batch: SampledBatch, next_target: np.ndarray) -> tuple[float, float, np.ndarray]:
        """Train on ``batch`` given ``Q_target(next_obs)``; returns (loss, mean Q, TD errors)."""
        size = len(batch.actions)
        x = self.q.inputs(batch.obs)
        if self.double:
            x = np.concatenate([x, self.q.inputs(batch.next_obs)])
        q_all, acts = self.q.forward(x)
        rows = np.arange(size)
        q_taken = q_all[rows, batch.actions]
        if self.double:
            next_q = next_target[rows, q_all[size:].argmax(axis=1)]
        else:
            next_q = next_target.max(axis=1)
        td = q_taken - (batch.returns + batch.discounts * next_q)
        abs_td = np.abs(td)
        huber = np.where(abs_td < 1.0, 0.5 * td * td, abs_td - 0.5)
        loss = float((batch.weights * huber).mean())
        g_q = np.zeros((size, q_all.shape[1]), dtype=np.float32)
        g_q[rows, batch.actions] = np.clip(td, -1.0, 1.0) * batch.weights / np.float32(size)
        grads = self.q.backward(acts, g_q)
        if self.max_grad_norm is not None:
            clip_grad_norm(grads, self.max_grad_norm)
        self.adam.step(grads)
        return loss, float(q_taken.mean()), td
