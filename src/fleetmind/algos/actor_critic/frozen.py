"""Deterministic decisions of an actor-critic whose parameters will not change again.

A served model is loaded from a checkpoint and never trained in place, so its
forward pass may use copies of the parameters arranged for speed. For the small
networks agents use, the cost of a forward pass is the number of numpy calls,
not arithmetic, so :class:`FrozenActorCritic`

- applies the observation normaliser with its scale computed once;
- runs actor and critic as one network: their first layers side by side, the
  later layers block-diagonal, so ``[B, A + 1]`` comes out of one matmul per layer;
- computes everything in place in the arrays it allocates.

That is about 18 numpy calls for a two-hidden-layer policy instead of about 35.
Networks wider than :data:`MAX_FUSED_WIDTH` or of unequal depth keep separate
layers (the block-diagonal weights would cost more arithmetic than they save).
"""

from __future__ import annotations

import numpy as np

from fleetmind.core.agent import Decision, Perceiver
from fleetmind.core.normalizer import ObservationNormalizer
from fleetmind.nn.numpy_actor_critic import NumpyActorCritic
from fleetmind.nn.numpy_mlp import IN_PLACE_ACTIVATIONS, Layer, forward

MAX_FUSED_WIDTH = 512
"""Actor and critic are fused only while every fused layer has at most this many units."""

Layers = list[Layer]


def _block_diagonal(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    out = np.zeros(
        (upper.shape[0] + lower.shape[0], upper.shape[1] + lower.shape[1]), dtype=np.float32
    )
    out[: upper.shape[0], : upper.shape[1]] = upper
    out[upper.shape[0] :, upper.shape[1] :] = lower
    return out


def fuse_actor_critic(actor: Layers, critic: Layers) -> Layers | None:
    """One network computing ``[actor(x), critic(x)]``, or None where fusing does not pay."""
    if len(actor) != len(critic):
        return None
    fused: Layers = []
    for i, ((wa, ba), (wc, bc)) in enumerate(zip(actor, critic, strict=True)):
        if wa.shape[1] + wc.shape[1] > MAX_FUSED_WIDTH:
            return None
        weight = np.hstack([wa, wc]) if i == 0 else _block_diagonal(wa, wc)
        fused.append((np.ascontiguousarray(weight, dtype=np.float32), np.concatenate([ba, bc])))
    return fused


class FrozenActorCritic:
    """``decide(observations) -> Decision`` for a frozen actor-critic.

    ``net`` is the actor-critic's numpy view; the decider keeps copies of its
    arrays. ``perceive`` is the agent's observation preprocessing: an
    :class:`ObservationNormalizer` is folded in, anything else is called first.
    Inputs must already be checked (shape, dtype FP32, finite), as the inference
    server does before batching.
    """

    def __init__(self, net: NumpyActorCritic, perceive: Perceiver | None = None) -> None:
        self._net = net.copy()
        self.discrete = net.discrete
        self.log_std = self._net.log_std
        fusable = net.activation in IN_PLACE_ACTIVATIONS  # computed in place, layer by layer
        self._fused = fuse_actor_critic(self._net.actor, self._net.critic) if fusable else None
        self._out_dim = self._net.actor[-1][0].shape[1]
        self._perceive: Perceiver | None = None
        self._scale: np.ndarray | None = None
        if isinstance(perceive, ObservationNormalizer):
            stats = perceive.stats
            self._mean = np.asarray(stats.mean, dtype=np.float64).copy()
            self._scale = 1.0 / np.sqrt(np.asarray(stats.var, dtype=np.float64) + perceive.epsilon)
            self._clip = float(perceive.clip)
        elif perceive is not None:
            self._perceive = perceive

    def _inputs(self, obs: np.ndarray) -> np.ndarray:
        if self._scale is not None:  # in float64 like the normaliser itself, then FP32
            x = np.subtract(obs, self._mean)
            np.multiply(x, self._scale, out=x)
            np.maximum(x, -self._clip, out=x)
            np.minimum(x, self._clip, out=x)
            model_input: np.ndarray = x.astype(np.float32)
            return model_input
        if self._perceive is not None:
            perceived: np.ndarray = np.asarray(self._perceive(obs), dtype=np.float32)
            return perceived
        return obs

    def _network(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(head [B, A], value [B])``."""
        if self._fused is not None:
            out = forward(self._fused, x, self._net.activation)
            return out[:, : self._out_dim], out[:, self._out_dim]
        return self._net.head(x), self._net.value(x)

    def __call__(self, observations: np.ndarray) -> Decision:
        head, value = self._network(self._inputs(observations))
        if self.discrete:
            probs = head  # a view into the forward's own output: softmax in place
            np.subtract(probs, probs.max(axis=1, keepdims=True), out=probs)
            np.exp(probs, out=probs)
            np.divide(probs, probs.sum(axis=1, keepdims=True), out=probs)
            return Decision(probs.argmax(axis=1), {"action_probs": probs, "value": value})
        log_std = np.broadcast_to(self.log_std, head.shape)
        return Decision(head, {"action_mean": head, "action_log_std": log_std, "value": value})
