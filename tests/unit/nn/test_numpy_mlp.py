"""The numpy MLP kernels compute what torch computes, forward and backward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fleetmind.nn.mlp import mlp
from fleetmind.nn.numpy_mlp import backward, forward, forward_cached, linear_views

TOL = {"rtol": 1e-5, "atol": 1e-6}


def _net(activation: str) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return mlp(5, (16, 8), 3, activation, out_gain=1.0)


def _grads_like(net: torch.nn.Sequential) -> list[np.ndarray]:
    return [np.zeros(tuple(p.shape), np.float32) for p in net.parameters()]


@pytest.mark.parametrize("activation", ["tanh", "relu", "elu"])
def test_forward_matches_torch(activation: str) -> None:
    net = _net(activation)
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    expected = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(forward(linear_views(net), x, activation), expected, **TOL)
    acts = forward_cached(linear_views(net), x, activation)
    assert [a.shape for a in acts] == [(7, 5), (7, 16), (7, 8), (7, 3)]
    assert acts[0] is x


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_backward_matches_autograd(activation: str) -> None:
    net = _net(activation)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 5)).astype(np.float32)
    g_out = rng.normal(size=(9, 3)).astype(np.float32)
    out = net(torch.from_numpy(x))
    (out * torch.from_numpy(g_out)).sum().backward()  # type: ignore[no-untyped-call]
    layers = linear_views(net)
    grads = _grads_like(net)
    backward(layers, forward_cached(layers, x, activation), g_out.copy(), activation, grads)
    for (name, p), mine in zip(net.named_parameters(), grads, strict=True):
        assert p.grad is not None
        np.testing.assert_allclose(mine, p.grad.numpy(), **TOL, err_msg=name)


def test_backward_counts_only_the_rows_of_the_gradient() -> None:
    """A forward over more rows (DQN's online and next observations together) and a
    gradient for the first rows gives the gradient of those rows alone."""
    net = _net("relu")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 5)).astype(np.float32)
    g_out = rng.normal(size=(4, 3)).astype(np.float32)
    layers = linear_views(net)
    all_rows, first_rows = _grads_like(net), _grads_like(net)
    backward(layers, forward_cached(layers, x, "relu"), g_out.copy(), "relu", all_rows)
    backward(layers, forward_cached(layers, x[:4], "relu"), g_out.copy(), "relu", first_rows)
    for a, b in zip(all_rows, first_rows, strict=True):
        np.testing.assert_array_equal(a, b)


def test_views_follow_in_place_parameter_updates() -> None:
    net = _net("tanh")
    layers = linear_views(net)
    x = np.ones((2, 5), np.float32)
    before = forward(layers, x, "tanh").copy()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    assert not np.array_equal(forward(layers, x, "tanh"), before)
    np.testing.assert_allclose(
        forward(layers, x, "tanh"), net(torch.from_numpy(x)).detach().numpy(), **TOL
    )
