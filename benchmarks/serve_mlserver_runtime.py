"""MLServer custom runtime serving the benchmark's policy (runs in MLServer's venv).

Loads the same PPO actor-critic as ``fleetmind serve`` (actor and critic tanh MLPs
plus the observation normaliser) from ``weights.pt`` next to ``model-settings.json``
and answers with the same outputs (action, action_probs, value), in torch as an
MLServer user would write it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri
from torch import nn


def _mlp(state: dict[str, torch.Tensor], prefix: str) -> nn.Sequential:
    """A tanh MLP whose Linear layers are ``prefix.K.weight/bias`` of ``state``."""
    indices = sorted(
        int(k[len(prefix) :].split(".")[0])
        for k in state
        if k.startswith(prefix) and k.endswith(".weight")
    )
    layers: list[nn.Module] = []
    for i, index in enumerate(indices):
        weight = state[f"{prefix}{index}.weight"]
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        linear.weight.data.copy_(weight)
        linear.bias.data.copy_(state[f"{prefix}{index}.bias"])
        layers.append(linear)
        if i < len(indices) - 1:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers).eval()


class PolicyRuntime(MLModel):
    """One forward pass per (adaptively batched) request."""

    async def load(self) -> bool:
        uri = Path(await get_model_uri(self.settings))
        state = torch.load(uri, weights_only=True)
        self.actor = _mlp(state, "net.actor.")
        self.critic = _mlp(state, "net.critic.")
        self.mean = state["obs_mean"]
        self.scale = 1.0 / torch.sqrt(state["obs_var"] + state["obs_eps"])
        self.clip = float(state["obs_clip"])
        torch.set_num_threads(1)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        obs = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(obs))
            x = ((x - self.mean) * self.scale).clamp(-self.clip, self.clip)
            probs = torch.softmax(self.actor(x), dim=-1)
            action = probs.argmax(dim=-1)
            value = self.critic(x)[:, 0]
        outputs = {"action": action.numpy(), "action_probs": probs.numpy(), "value": value.numpy()}
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output(k, v) for k, v in outputs.items()],
        )
