"""MLServer custom runtime serving the benchmark's policy network (runs in MLServer's venv).

Loads the same 64-64 MLP weights as ``fleetmind serve`` from ``weights.pt`` next to
``model-settings.json`` and answers with the same outputs (action, action_probs, value).
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


class PolicyRuntime(MLModel):
    """One forward pass per (adaptively batched) request."""

    async def load(self) -> bool:
        uri = Path(await get_model_uri(self.settings))
        weights = torch.load(uri, weights_only=True)
        obs_dim = weights["0.weight"].shape[1]
        out_dim = weights["4.weight"].shape[0]
        self.net = nn.Sequential(
            nn.Linear(obs_dim, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, out_dim)
        ).eval()
        self.net.load_state_dict(weights)
        self.n_actions = out_dim - 1
        torch.set_num_threads(1)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        obs = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        with torch.inference_mode():
            out = self.net(torch.from_numpy(np.ascontiguousarray(obs)))
            probs = torch.softmax(out[:, : self.n_actions], dim=-1)
            action = probs.argmax(dim=-1)
        outputs = {
            "action": action.numpy(),
            "action_probs": probs.numpy(),
            "value": out[:, self.n_actions].numpy(),
        }
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output(k, v) for k, v in outputs.items()],
        )
