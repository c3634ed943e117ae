"""Multi-layer perceptrons with orthogonal initialisation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}


def orthogonal_init(layer: nn.Linear, gain: float = math.sqrt(2.0), bias: float = 0.0) -> nn.Linear:
    """Initialise ``layer`` with orthogonal weights of scale ``gain`` and constant bias."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.constant_(layer.bias, bias)
    return layer


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    activation: str = "tanh",
    out_gain: float = 1.0,
) -> nn.Sequential:
    """``in_dim -> hidden... -> out_dim``, orthogonally initialised (last layer ``out_gain``)."""
    act = ACTIVATIONS[activation]
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [orthogonal_init(nn.Linear(last, width)), act()]
        last = width
    layers.append(orthogonal_init(nn.Linear(last, out_dim), gain=out_gain))
    return nn.Sequential(*layers)


def flat_input(obs: torch.Tensor, obs_ndim: int) -> torch.Tensor:
    """Flatten the trailing ``obs_ndim`` dims of ``obs`` into one feature dim."""
    if obs_ndim == 1:
        return obs
    return obs.reshape(*obs.shape[: obs.ndim - obs_ndim], -1)
