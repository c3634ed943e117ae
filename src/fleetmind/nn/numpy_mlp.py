"""Multi-layer perceptrons in numpy: the forward pass and the backward pass.

For the small networks agents use, the cost of a pass is the number of numpy
calls, not arithmetic, and numpy's per-call overhead is a fraction of torch's. The
functions here run an MLP given as a list of :data:`Layer` pairs ``(weight, bias)``
with the weight as ``[in, out]``, so that a layer is ``x @ weight + bias``.
:func:`linear_views` makes them from torch modules as *views* of the parameters:
they see every in-place optimizer step, and a caller wanting a snapshot copies.

An MLP applies ``activation`` after every layer but the last::

    acts = forward_cached(layers, x, "tanh")           # [x, h_1, ..., output]
    backward(layers, acts, d_loss / d_output, "tanh", grads)
    # grads = [dW_0, db_0, dW_1, db_1, ...], each dW as torch's [out, in]

The weight gradients come out in torch's layout, the shape of the parameter a
gradient step updates. The arithmetic (which operations, in which order, on
which dtypes) is part of the contract: fixed-seed training runs reproduce bit
for bit only while it stays the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from torch import nn

Layer = tuple[np.ndarray, np.ndarray]
"""One linear layer: ``(weight [in, out], bias [out])``."""


def linear_views(modules: Iterable[nn.Module]) -> list[Layer]:
    """Numpy views of each :class:`torch.nn.Linear` among ``modules`` (others skipped).

    The weight is the transpose of torch's ``[out, in]`` parameter (a view, not a
    copy), so the views follow in-place updates of the parameters.
    """
    return [
        (m.weight.detach().numpy().T, m.bias.detach().numpy())
        for m in modules
        if isinstance(m, nn.Linear)
    ]


def _tanh(h: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.tanh(h, out=h)
    return out


def _relu(h: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.maximum(h, 0.0, out=h)
    return out


def _elu(h: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.where(h > 0, h, np.expm1(np.minimum(h, 0.0)))
    return out


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": _tanh,
    "relu": _relu,
    "elu": _elu,
}
"""Hidden-layer activations by name, applied to a freshly computed layer output.
They return the result; tanh and relu compute it in place in their argument."""

IN_PLACE_ACTIVATIONS = frozenset({"tanh", "relu"})
"""The activations of :data:`ACTIVATIONS` that allocate nothing."""


def _tanh_grad(h: np.ndarray, g: np.ndarray) -> np.ndarray:
    g *= 1.0 - h * h
    return g


def _relu_grad(h: np.ndarray, g: np.ndarray) -> np.ndarray:
    g *= h > 0
    return g


ACTIVATION_GRADS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "tanh": _tanh_grad,
    "relu": _relu_grad,
}
"""``(h, g) -> g * activation'``, given the activation's output ``h`` and the
gradient ``g`` with respect to it (overwritten). The activations
:func:`backward` supports."""


def linear(x: np.ndarray, layer: Layer) -> np.ndarray:
    """``x @ weight + bias`` (the sum in place in the product)."""
    weight, bias = layer
    out: np.ndarray = x @ weight
    out += bias
    return out


def forward_cached(layers: Sequence[Layer], x: np.ndarray, activation: str) -> list[np.ndarray]:
    """``[x, h_1, ..., output]``: the input of every layer, and the network's output.

    ``activation`` follows every layer but the last; :func:`backward` reads the list.
    """
    act = ACTIVATIONS[activation]
    acts = [x]
    for layer in layers[:-1]:
        acts.append(act(linear(acts[-1], layer)))
    acts.append(linear(acts[-1], layers[-1]))
    return acts


def forward(layers: Sequence[Layer], x: np.ndarray, activation: str) -> np.ndarray:
    """The network's output for input rows ``x`` (as :func:`forward_cached`, keeping
    nothing else)."""
    act = ACTIVATIONS[activation]
    for layer in layers[:-1]:
        x = act(linear(x, layer))
    return linear(x, layers[-1])


def linear_grads(
    g: np.ndarray, x: np.ndarray, weight_grad: np.ndarray, bias_grad: np.ndarray
) -> None:
    """Write one layer's ``dW = g^T x`` (torch's ``[out, in]``) and ``db = sum_rows g``,
    given its inputs ``x`` and the gradient ``g`` with respect to its outputs."""
    np.matmul(g.T, x, out=weight_grad)
    np.sum(g, axis=0, out=bias_grad)


def backward(
    layers: Sequence[Layer],
    acts: Sequence[np.ndarray],
    g: np.ndarray,
    activation: str,
    grads: Sequence[np.ndarray],
) -> None:
    """Write the gradients of every layer's parameters into ``grads``.

    ``acts`` comes from :func:`forward_cached` on the same ``layers`` (or is at least
    as long as ``layers``); ``g`` is the loss's gradient with respect to the last
    layer's output for the first ``len(g)`` rows, which are the only rows that count.
    ``grads`` holds ``[dW_0, db_0, dW_1, db_1, ...]``, shaped like torch's parameters.
    """
    grad_of = ACTIVATION_GRADS[activation]
    rows = len(g)
    for i in range(len(layers) - 1, -1, -1):
        x = acts[i][:rows]
        linear_grads(g, x, grads[2 * i], grads[2 * i + 1])
        if i > 0:
            g = grad_of(x, g @ layers[i][0].T)
