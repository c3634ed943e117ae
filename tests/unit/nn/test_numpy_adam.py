"""The numpy Adam steps as torch.optim.Adam does, and keeps its state where it says."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from fleetmind.core.errors import ConfigError
from fleetmind.nn.mlp import mlp
from fleetmind.nn.numpy_adam import NumpyAdam, Rounding


def _pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    net = mlp(4, (8,), 2, "tanh", out_gain=1.0)
    return net, copy.deepcopy(net)


def _gradients(net: torch.nn.Module, step: int) -> list[np.ndarray]:
    rng = np.random.default_rng(step)
    return [rng.normal(size=tuple(p.shape)).astype(np.float32) for p in net.parameters()]


def _assert_close(ours: torch.nn.Module, reference: torch.nn.Module) -> None:
    for (name, ref), mine in zip(reference.named_parameters(), ours.parameters(), strict=True):
        np.testing.assert_allclose(
            mine.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name
        )


@pytest.mark.parametrize("rounding", ["paper", "torch"])
@pytest.mark.parametrize("max_norm", [None, 0.5])
def test_steps_match_torch_adam(rounding: Rounding, max_norm: float | None) -> None:
    reference, net = _pair()
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-2, eps=1e-5)
    params = [p.detach().numpy() for p in net.parameters()]
    adam = NumpyAdam(params, eps=1e-5, rounding=rounding)
    for step in range(5):
        grads = _gradients(net, step)
        for p, g in zip(reference.parameters(), grads, strict=True):
            p.grad = torch.from_numpy(g.copy())
        if max_norm is not None:
            torch.nn.utils.clip_grad_norm_(reference.parameters(), max_norm)
        optimizer.step()
        adam.set_grads(grads)
        if max_norm is not None:
            adam.clip_grad_norm(max_norm)
        adam.step(1e-2)
    assert adam.t == 5
    _assert_close(net, reference)


def test_over_torch_shares_the_optimizers_state() -> None:
    """Steps taken in numpy land in the torch optimizer's state, so torch can go on."""
    reference, net = _pair()
    ref_opt = torch.optim.Adam(reference.parameters(), lr=1e-2)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    adam = NumpyAdam.over_torch(optimizer, list(net.parameters()))
    for step in range(6):
        grads = _gradients(net, step)
        for p, g in zip(reference.parameters(), grads, strict=True):
            p.grad = torch.from_numpy(g.copy())
        ref_opt.step()
        if step < 3:
            adam.set_grads(grads)
            adam.step(1e-2)
        else:  # the torch optimizer continues from the numpy steps
            for p, g in zip(net.parameters(), grads, strict=True):
                p.grad = torch.from_numpy(g.copy())
            optimizer.step()
    _assert_close(net, reference)
    for p in net.parameters():
        assert float(optimizer.state[p]["step"]) == 6.0


def test_over_torch_keeps_restored_moments() -> None:
    _, net = _pair()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    first = next(iter(net.parameters()))
    moment = optimizer.state[first]["exp_avg"].clone()
    adam = NumpyAdam.over_torch(optimizer, list(net.parameters()))
    assert adam.t == 1
    np.testing.assert_array_equal(adam.m[0], moment.numpy())


def test_over_torch_refuses_variants_it_does_not_implement() -> None:
    _, net = _pair()
    optimizer = torch.optim.Adam(net.parameters(), weight_decay=0.1)
    with pytest.raises(ConfigError, match="plain Adam"):
        NumpyAdam.over_torch(optimizer, list(net.parameters()))


def test_state_dict_round_trip() -> None:
    _, net = _pair()
    adam = NumpyAdam([p.detach().numpy() for p in net.parameters()], eps=1e-5)
    for step in range(2):
        adam.set_grads(_gradients(net, step))
        adam.step(1e-3)
    state = adam.state_dict()
    restored = NumpyAdam([p.detach().numpy().copy() for p in net.parameters()], eps=1e-5)
    restored.load_state_dict(state)
    assert restored.t == 2
    for a, b in zip(adam.m + adam.v, restored.m + restored.v, strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(isinstance(t, torch.Tensor) for t in state["m"] + state["v"])


def test_tiny_moments_are_flushed_to_zero() -> None:
    _, net = _pair()
    adam = NumpyAdam([p.detach().numpy() for p in net.parameters()], eps=1e-5, flush_every=2)
    adam.flat_m[:] = 1e-35
    adam.flat_v[:] = 1e-35
    adam.step(1e-3)  # zero gradients: the moments only decay
    assert np.all(adam.flat_m > 0)
    adam.step(1e-3)
    assert not adam.flat_m.any()
    assert not adam.flat_v.any()
