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
from fleetmind.core.errors import ConfigError


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

    def backward(self, acts: list[np.ndarray], g_q: np.ndarray, out: list[np.ndarray]) -> None:
        """Write the parameters' gradients into ``out`` (order of ``net.parameters()``),
        given ``dL/dQ`` for the first ``len(g_q)`` rows of ``acts``."""
        rows = len(g_q)
        features = acts[-1][:rows]
        layer = len(self.hidden)
        w_a, _ = self.advantage
        if self.value is None:
            g = self._weights_grad(g_q, features, out[2 * layer :]) @ w_a
        else:
            w_v, _ = self.value
            g_adv = g_q - g_q.mean(axis=1, keepdims=True)
            g_val = g_q.sum(axis=1, keepdims=True)
            self._weights_grad(g_adv, features, out[2 * layer :])
            self._weights_grad(g_val, features, out[2 * layer + 2 :])
            g = g_adv @ w_a + g_val @ w_v
        for i in range(layer - 1, -1, -1):
            g *= acts[i + 1][:rows] > 0
            self._weights_grad(g, acts[i][:rows], out[2 * i :])
            if i > 0:
                g = g @ self.hidden[i][0]

    @staticmethod
    def _weights_grad(g: np.ndarray, inputs: np.ndarray, out: list[np.ndarray]) -> np.ndarray:
        """``dW = g^T inputs`` and ``db = sum g`` into ``out[0]``, ``out[1]``; returns ``g``."""
        np.matmul(g.T, inputs, out=out[0])
        np.sum(g, axis=0, out=out[1])
        return g


class TorchAdamViews:
    """Adam in numpy, on views of a ``torch.optim.Adam``'s parameters and state.

    The arithmetic is torch's (bias corrections, ``eps`` added after the square
    root), and the state lives in the torch optimizer, so its ``state_dict`` stays
    the checkpoint of either backend. The moments of all parameters become views of
    one flat tensor each, and gradients are written into one flat array
    (:attr:`grads` holds its per-parameter views): an update is a dozen numpy
    operations however many layers there are.

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
        variant = group["weight_decay"] or group["amsgrad"] or group["maximize"]
        if len(optimizer.param_groups) != 1 or variant:
            raise ConfigError(
                "the numpy step implements plain Adam with one parameter group "
                "(no weight decay, amsgrad or maximize); use the torch backend"
            )
        self.group = group
        total = sum(p.numel() for p in params)
        flat_m, flat_v = torch.zeros(total), torch.zeros(total)
        self.steps: list[np.ndarray] = []
        offset = 0
        for p in params:
            state = optimizer.state[p]
            size = p.numel()
            for key, flat in (("exp_avg", flat_m), ("exp_avg_sq", flat_v)):
                view = flat[offset : offset + size].view_as(p)
                if key in state:
                    view.copy_(state[key])
                state[key] = view
            state.setdefault("step", torch.zeros((), dtype=torch.float32))
            self.steps.append(state["step"].numpy())
            offset += size
        self.m, self.v = flat_m.numpy(), flat_v.numpy()
        self.flat_grad = np.zeros(total, dtype=np.float32)
        self.grads = self._views(self.flat_grad, params)
        """Per-parameter views of the flat gradient, to be filled before :meth:`step`."""
        self.update = np.zeros(total, dtype=np.float32)
        self.updates = self._views(self.update, params)
        self.params = [p.detach().numpy() for p in params]

    @staticmethod
    def _views(flat: np.ndarray, params: list[nn.Parameter]) -> list[np.ndarray]:
        ends = np.cumsum([0] + [p.numel() for p in params])
        return [
            flat[a:b].reshape(p.shape) for a, b, p in zip(ends[:-1], ends[1:], params, strict=True)
        ]

    def clip_grad_norm(self, max_norm: float) -> None:
        """Scale :attr:`grads` as ``torch.nn.utils.clip_grad_norm_`` does."""
        norm = math.sqrt(float(np.dot(self.flat_grad, self.flat_grad)))
        coef = max_norm / (norm + 1e-6)
        if coef < 1.0:
            self.flat_grad *= np.float32(coef)

    def step(self) -> None:
        """One Adam update of every parameter with the gradient in :attr:`grads`."""
        beta1, beta2 = self.group["betas"]
        lr, eps = float(self.group["lr"]), float(self.group["eps"])
        for count in self.steps:
            count += 1.0
        t = float(self.steps[0])
        g, m, v, tmp = self.flat_grad, self.m, self.v, self.update
        m *= beta1
        np.multiply(g, 1.0 - beta1, out=tmp)
        m += tmp
        v *= beta2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - beta2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp *= 1.0 / math.sqrt(1.0 - beta2**t)
        tmp += eps
        np.divide(m, tmp, out=tmp)
        tmp *= lr / (1.0 - beta1**t)
        for p, u in zip(self.params, self.updates, strict=True):
            p -= u
        if t % self.FLUSH_EVERY == 0:
            for moment in (m, v):
                np.copyto(moment, 0.0, where=np.abs(moment) < self.TINY)


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
        loss = float(np.dot(batch.weights, huber)) / size
        g_q = np.zeros((size, q_all.shape[1]), dtype=np.float32)
        g_q[rows, batch.actions] = np.clip(td, -1.0, 1.0) * batch.weights / np.float32(size)
        self.q.backward(acts, g_q, self.adam.grads)
        if self.max_grad_norm is not None:
            self.adam.clip_grad_norm(self.max_grad_norm)
        self.adam.step()
        return loss, float(np.add.reduce(q_taken)) / size, td
