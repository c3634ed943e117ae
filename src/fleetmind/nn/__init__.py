"""Network building blocks shared by the algorithms."""

from fleetmind.nn.mlp import mlp, orthogonal_init

__all__ = ["mlp", "orthogonal_init"]
