"""Adam in numpy, on views of torch parameters, with global-norm gradient clipping.

Every parameter's gradient and both of its moments are views into one flat
float32 array each, so an update is about a dozen numpy calls however many
layers the network has. A caller writes gradients into :attr:`NumpyAdam.grads`
(for instance with :func:`fleetmind.nn.numpy_mlp.backward`), then::

    adam.clip_grad_norm(max_norm)      # optional
    adam.step(lr)                      # updates the parameters in place

The state lives in one of two places:

- its own arrays (``NumpyAdam(params, eps=...)``), checkpointed with
  :meth:`NumpyAdam.state_dict` / :meth:`NumpyAdam.load_state_dict`;
- a ``torch.optim.Adam``'s state (:meth:`NumpyAdam.over_torch`): the moments and
  step counts become views of the torch optimizer's own tensors, so its
  ``state_dict`` stays the checkpoint and a run may resume with either optimizer.

Adam's update can be arranged in ways that are equal in exact arithmetic but round
differently in float32. Two arrangements are in use, and each is kept bit for bit
so that fixed-seed runs reproduce (``c1 = 1 - beta1^t``, ``c2 = 1 - beta2^t``)::

    both     m  = beta1 m + (1 - beta1) g
    "paper"  v  = beta2 v + ((1 - beta2) g) g
             p -= ((lr / c1) m) / (sqrt(v / c2) + eps)
    "torch"  v  = beta2 v + (g g) (1 - beta2)
             p -= (m / (sqrt(v) (1 / sqrt(c2)) + eps)) (lr / c1)

"paper" is Kingma & Ba's Algorithm 1; "torch" is the arrangement of
``torch.optim.Adam``. They also measure the gradient norm differently (see
:meth:`NumpyAdam.clip_grad_norm`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from fleetmind.core.errors import ConfigError

Rounding = Literal["paper", "torch"]


def _views(flat: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Consecutive views of ``flat`` with the given shapes."""
    ends = np.cumsum([0] + [math.prod(s) for s in shapes])
    return [flat[a:b].reshape(s) for a, b, s in zip(ends[:-1], ends[1:], shapes, strict=True)]


class NumpyAdam:
    """Adam over numpy parameter arrays (views of torch parameters), updated in place.

    ``eps`` and ``betas`` are Adam's; ``rounding`` picks the arrangement of the
    update (see the module docstring). ``moments``: flat float32 arrays, one
    element per parameter element, to keep the first and second moments in
    (fresh zeros when None).

    ``flush_every``: every so many steps, moments below :attr:`TINY` are set to zero.
    The first moment of a parameter whose gradient stays zero (a dead ReLU unit)
    decays by ``beta1`` a step into subnormal floats, which made the update five
    times slower on x86 in a CartPole run; a moment that small moves its parameter
    by less than ``lr * 1e-24``. None never flushes.
    """

    TINY = 1e-32

    def __init__(
        self,
        params: Sequence[np.ndarray],
        eps: float,
        betas: tuple[float, float] = (0.9, 0.999),
        rounding: Rounding = "paper",
        flush_every: int | None = None,
        moments: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.params = list(params)
        self.eps = eps
        self.beta1, self.beta2 = betas
        self.rounding: Rounding = rounding
        self.flush_every = flush_every
        self.t = 0
        """Steps taken."""
        self._torch_steps: list[np.ndarray] = []
        shapes = [p.shape for p in self.params]
        total = sum(p.size for p in self.params)
        if moments is None:
            moments = (np.zeros(total, np.float32), np.zeros(total, np.float32))
        self.flat_m, self.flat_v = moments
        self.m = _views(self.flat_m, shapes)
        self.v = _views(self.flat_v, shapes)
        self.flat_grad = np.zeros(total, dtype=np.float32)
        self.grads = _views(self.flat_grad, shapes)
        """Per-parameter views of the flat gradient, to be filled before :meth:`step`."""
        self._tmp = np.zeros(total, dtype=np.float32)
        self._update = np.zeros(total, dtype=np.float32)
        self._updates = _views(self._update, shapes)

    @classmethod
    def over_torch(
        cls,
        optimizer: torch.optim.Adam,
        params: Sequence[torch.nn.Parameter],
        flush_every: int = 32,
    ) -> NumpyAdam:
        """A numpy Adam whose state is ``optimizer``'s own (torch's rounding).

        The optimizer's moments of ``params`` are replaced by views of two flat
        tensors (keeping their values), and its step counts are shared.
        """
        group = optimizer.param_groups[0]
        variant = group["weight_decay"] or group["amsgrad"] or group["maximize"]
        if len(optimizer.param_groups) != 1 or variant:
            raise ConfigError(
                "the numpy step implements plain Adam with one parameter group "
                "(no weight decay, amsgrad or maximize); use the torch backend"
            )
        total = sum(p.numel() for p in params)
        flat_m, flat_v = torch.zeros(total), torch.zeros(total)
        steps: list[np.ndarray] = []
        offset = 0
        for p in params:
            state = optimizer.state[p]
            for key, flat in (("exp_avg", flat_m), ("exp_avg_sq", flat_v)):
                view = flat[offset : offset + p.numel()].view_as(p)
                if key in state:
                    view.copy_(state[key])
                state[key] = view
            state.setdefault("step", torch.zeros((), dtype=torch.float32))
            steps.append(state["step"].numpy())
            offset += p.numel()
        adam = cls(
            [p.detach().numpy() for p in params],
            eps=float(group["eps"]),
            betas=group["betas"],
            rounding="torch",
            flush_every=flush_every,
            moments=(flat_m.numpy(), flat_v.numpy()),
        )
        adam._torch_steps = steps
        adam.t = int(steps[0]) if steps else 0
        return adam

    def set_grads(self, grads: Sequence[np.ndarray]) -> None:
        """Copy ``grads`` (one per parameter) into :attr:`grads`."""
        for dst, src in zip(self.grads, grads, strict=True):
            dst[...] = src

    def global_norm(self) -> float:
        """The L2 norm of all gradients together.

        "paper": the float64 sum of each gradient's float32 squared norm;
        "torch": one float32 dot product over the flat gradient.
        """
        if self.rounding == "torch":
            return math.sqrt(float(np.dot(self.flat_grad, self.flat_grad)))
        return math.sqrt(sum(float(np.vdot(g, g)) for g in self.grads))

    def clip_grad_norm(self, max_norm: float) -> None:
        """Scale the gradients to a global norm of at most ``max_norm``, by
        ``max_norm / (norm + 1e-6)`` as ``torch.nn.utils.clip_grad_norm_`` does.

        "paper" scales when ``norm > max_norm``; "torch" when the factor is below 1.
        """
        norm = self.global_norm()
        coef = max_norm / (norm + 1e-6)
        clip = norm > max_norm if self.rounding == "paper" else coef < 1.0
        if clip:
            self.flat_grad *= np.float32(coef)

    def step(self, lr: float) -> None:
        """One Adam update of every parameter with the gradients in :attr:`grads`."""
        t = self._advance()
        g, m, v, tmp = self.flat_grad, self.flat_m, self.flat_v, self._tmp
        b1, b2 = self.beta1, self.beta2
        m *= b1
        np.multiply(g, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        if self.rounding == "torch":
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - b2
        else:
            np.multiply(g, 1.0 - b2, out=tmp)
            tmp *= g
        v += tmp
        self._write_update(t, lr)
        for p, u in zip(self.params, self._updates, strict=True):
            p -= u
        if self.flush_every is not None and t % self.flush_every == 0:
            for moment in (m, v):
                np.copyto(moment, 0.0, where=np.abs(moment) < self.TINY)

    def _advance(self) -> float:
        """Count a step; returns the step number (torch's own count when bound to it)."""
        self.t += 1
        for count in self._torch_steps:
            count += 1.0
        return float(self._torch_steps[0]) if self._torch_steps else float(self.t)

    def _write_update(self, t: float, lr: float) -> None:
        """The step of every parameter (to subtract) into ``self._update``."""
        m, v, tmp, update = self.flat_m, self.flat_v, self._tmp, self._update
        c1, c2 = 1.0 - self.beta1**t, 1.0 - self.beta2**t
        if self.rounding == "torch":
            np.sqrt(v, out=tmp)
            tmp *= 1.0 / math.sqrt(c2)
            tmp += self.eps
            np.divide(m, tmp, out=update)
            update *= lr / c1
        else:
            np.divide(v, c2, out=tmp)
            np.sqrt(tmp, out=tmp)
            tmp += self.eps
            np.multiply(m, lr / c1, out=update)
            update /= tmp

    def state_dict(self) -> dict[str, Any]:
        """Moments as tensors (``weights_only`` loadable) and the step count."""
        return {
            "t": self.t,
            "m": [torch.from_numpy(m.copy()) for m in self.m],
            "v": [torch.from_numpy(v.copy()) for v in self.v],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.t = int(state["t"])
        for dst, src in zip(self.m + self.v, list(state["m"]) + list(state["v"]), strict=True):
            dst[...] = src.numpy()
