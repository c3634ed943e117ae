"""Policy weights by version: taken once on the learner, loaded into an actor's copy.

After each update the learner publishes the new version once: a copy of every
tensor of the network's ``state_dict`` and the merged observation statistics. A
transport that sends weights over the network attaches its encoder, which then
runs once per version in the publishing thread, never per actor::

    store.publish(version, net, obs_stats)     # learner, after each update
    store.latest()                             # Weights, wire form included
    load_weights(actor_net, weights)           # actor
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from fleetmind.core.errors import InvalidInputError
from fleetmind.core.exchange import Weights
from fleetmind.core.normalizer import RunningMeanStd

Encoder = Callable[[Weights], Any]
"""Turns a version into a transport's wire form (stored in ``Weights.wire``)."""


def snapshot(version: int, module: nn.Module, obs_stats: RunningMeanStd | None) -> Weights:
    """A copy of ``module``'s tensors (and the statistics) as version ``version``."""
    digest = hashlib.sha256()
    tensors: dict[str, np.ndarray] = {}
    for name, tensor in module.state_dict().items():
        array = np.array(tensor.detach().cpu().numpy(), copy=True)  # shared: never written
        digest.update(np.ascontiguousarray(array).tobytes())
        tensors[name] = array
    stats = obs_stats.copy() if obs_stats is not None else None
    return Weights(version, tensors, stats, digest.hexdigest())


class WeightStore:
    """The latest published version (thread-safe: the trainer thread publishes)."""

    def __init__(self) -> None:
        self._latest: Weights | None = None
        self._encoder: Encoder | None = None
        self._lock = threading.Lock()

    def publish(self, version: int, module: nn.Module, obs_stats: RunningMeanStd | None) -> Weights:
        """Take ``module`` as ``version`` (encoded once, if an encoder is attached)."""
        weights = snapshot(version, module, obs_stats)
        encoder = self._encoder
        if encoder is not None:
            weights.wire = encoder(weights)
        with self._lock:
            self._latest = weights
        return weights

    def set_encoder(self, encoder: Encoder) -> None:
        """Encode every version from now on with ``encoder`` (the latest one at once)."""
        with self._lock:
            self._encoder = encoder
            latest = self._latest
        if latest is not None and latest.wire is None:
            latest.wire = encoder(latest)

    def latest(self) -> Weights | None:
        """The newest published version, if any."""
        with self._lock:
            return self._latest


def load_weights(module: nn.Module, weights: Weights) -> None:
    """Copy a received version into ``module``; InvalidInputError when it does not fit."""
    state = module.state_dict()
    if sorted(weights.tensors) != sorted(state):
        raise InvalidInputError("weights do not match the network (different tensor names)")
    with torch.no_grad():
        for name, array in weights.tensors.items():
            target = state[name]
            if tuple(target.shape) != array.shape:
                raise InvalidInputError(f"weight {name} has shape {list(array.shape)}")
            source = torch.from_numpy(array if array.flags.writeable else array.copy())
            target.copy_(source)
