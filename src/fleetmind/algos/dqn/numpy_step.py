"""The DQN gradient step in numpy, for MLP Q-networks on the CPU.

With RL-Zoo's CartPole settings a DQN round is 128 gradient steps of a 4-256-256-2
network on 64 transitions. The arithmetic of one step is a fraction of a
millisecond, while torch's per-operator overhead puts an autograd step plus Adam at
several. This module writes the Huber TD loss's gradient out by hand and runs the
network, gradient-norm clipping and Adam with the numpy kernels of
:mod:`fleetmind.nn.numpy_mlp` and :mod:`fleetmind.nn.numpy_adam`. It works on numpy
views of the torch parameters *and of the torch Adam's own state* (``step``,
``exp_avg``, ``exp_avg_sq``; :meth:`fleetmind.nn.numpy_adam.NumpyAdam.over_torch`),
so checkpoints, evaluation and serving see every step, and a run may resume on
either backend. It computes what
:meth:`fleetmind.algos.dqn.learner.DQNLearner` computes with autograd; a test checks the
parameters step for step against torch.

Per minibatch of B transitions with importance weights w (all ones without PER)::

    y_i   = R_i + d_i * Q_target(s'_i, argmax_a Q(s'_i, a))    (double)
          = R_i + d_i * max_a Q_target(s'_i, a)                 (vanilla)
    L     = mean_i w_i * huber(Q(s_i, a_i) - y_i)
    dL/dQ(s_i, a_i) = w_i * clip(Q(s_i, a_i) - y_i, -1, 1) / B
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fleetmind.algos.dqn.q_network import QNetwork
from fleetmind.algos.dqn.replay import SampledBatch
from fleetmind.nn.numpy_adam import NumpyAdam
from fleetmind.nn.numpy_mlp import (
    ACTIVATION_GRADS,
    backward,
    forward_cached,
    linear,
    linear_grads,
    linear_views,
)


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


class NumpyQNetwork:
    """Forward and backward passes of a :class:`QNetwork` on views of its parameters.

    The body and the advantage head make one MLP with ReLU between its layers; the
    dueling value head reads the same features.
    """

    def __init__(self, net: QNetwork) -> None:
        self.net = net
        self.layers = linear_views([*net.body, net.advantage])
        """The body's layers, then the advantage head."""
        self.value = linear_views([net.value])[0] if net.value is not None else None
        self.eye = np.eye(net.one_hot, dtype=np.float32) if net.one_hot is not None else None

    def inputs(self, obs: np.ndarray) -> np.ndarray:
        """Model inputs as the network sees them: one-hot or flattened float32 rows."""
        if self.eye is not None:
            return self.eye[np.asarray(obs).reshape(-1).astype(np.int64)]
        return np.asarray(obs).reshape(len(obs), -1).astype(np.float32, copy=False)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """``Q`` of input rows ``x``, and the layer inputs the backward pass needs."""
        acts = forward_cached(self.layers, x, "relu")
        q = acts[-1]
        if self.value is not None:
            q += linear(acts[-2], self.value) - q.mean(axis=1, keepdims=True)
        return q, acts

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """``[B, num_actions]`` action values of raw observations."""
        return self.forward(self.inputs(obs))[0]

    def backward(self, acts: list[np.ndarray], g_q: np.ndarray, out: list[np.ndarray]) -> None:
        """Write the parameters' gradients into ``out`` (order of ``net.parameters()``),
        given ``dL/dQ`` for the first ``len(g_q)`` rows of ``acts``."""
        if self.value is None:
            backward(self.layers, acts, g_q, "relu", out)
            return
        body = self.layers[:-1]
        features = acts[-2][: len(g_q)]
        g_adv = g_q - g_q.mean(axis=1, keepdims=True)
        g_val = g_q.sum(axis=1, keepdims=True)
        heads = 2 * len(body)
        linear_grads(g_adv, features, out[heads], out[heads + 1])
        linear_grads(g_val, features, out[heads + 2], out[heads + 3])
        if body:
            g = g_adv @ self.layers[-1][0].T + g_val @ self.value[0].T
            backward(body, acts, ACTIVATION_GRADS["relu"](features, g), "relu", out)


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
        self.optimizer = optimizer
        self.adam = NumpyAdam.over_torch(optimizer, list(net.parameters()))
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
        self.adam.step(float(self.optimizer.param_groups[0]["lr"]))
        return loss, float(np.add.reduce(q_taken)) / size, td
