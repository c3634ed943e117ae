"""An actor-critic's networks in numpy: actor and critic MLPs and a log standard deviation.

:class:`NumpyActorCritic` is what every numpy consumer of an actor-critic reads:
the behaviour policy and the evaluation policy (views that follow training), the
PPO gradient step (views it updates) and the served model (copies that never
change). It holds arrays only, so it knows nothing of the torch module it was
made from; :meth:`fleetmind.algos.actor_critic.network.ActorCritic.numpy_view` makes one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fleetmind.nn.numpy_mlp import Layer, forward


class NumpyActorCritic:
    """Actor layers (``[B, D] -> [B, A]``), critic layers (``[B, D] -> [B, 1]``),
    their hidden ``activation``, the Gaussian ``log_std`` (unused when ``discrete``)."""

    def __init__(
        self,
        actor: Sequence[Layer],
        critic: Sequence[Layer],
        activation: str,
        log_std: np.ndarray,
        discrete: bool,
    ) -> None:
        self.actor = list(actor)
        self.critic = list(critic)
        self.activation = activation
        self.log_std = log_std
        self.discrete = discrete

    def head(self, x: np.ndarray) -> np.ndarray:
        """Actor output ``[B, A]``: logits, or the Gaussian mean."""
        return forward(self.actor, x, self.activation)

    def value(self, x: np.ndarray) -> np.ndarray:
        """Critic values ``[B]``."""
        return forward(self.critic, x, self.activation)[:, 0]

    def copy(self) -> NumpyActorCritic:
        """Copies of every array (C-ordered): a snapshot that later training leaves alone."""
        return NumpyActorCritic(
            [(w.copy(), b.copy()) for w, b in self.actor],
            [(w.copy(), b.copy()) for w, b in self.critic],
            self.activation,
            self.log_std.copy(),
            self.discrete,
        )
