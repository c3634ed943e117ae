"""A small, deterministic policy network and its checkpoints, for tests and benchmarks.

:class:`ToyPolicy` is a 64-64 MLP actor-critic over a discrete action space,
shaped like a CartPole PPO policy. Its checkpoints are real fleetmind checkpoint
files (:class:`fleetmind.algos.checkpoint.CheckpointStore`) with the weights
under ``"toy"``, and :func:`toy_loader` serves them::

    write_toy_checkpoint(Path("runs/toy"), seed=1, version=3)
    fleetmind serve runs/toy --loader fleetmind.serve.testing:toy_loader
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from fleetmind.algos.checkpoint import CheckpointStore, find_checkpoint_dir
from fleetmind.core.agent import Agent, Decision
from fleetmind.core.errors import CheckpointError
from fleetmind.core.spaces import SpaceSpec
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.model import LoadedModel
from fleetmind.serve.repository import Loader
from fleetmind.serve.server import InferenceServer

T = TypeVar("T")

OBS_DIM = 4
N_ACTIONS = 2
HIDDEN = 64


def toy_network(
    seed: int, obs_dim: int = OBS_DIM, n_actions: int = N_ACTIONS, hidden: int = HIDDEN
) -> nn.Module:
    """The MLP: a trunk of two tanh layers (``hidden`` wide), then logits and value heads
    in one linear. A wide one is a model that costs real compute (an edge device's)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(obs_dim, hidden),
        nn.Tanh(),
        nn.Linear(hidden, hidden),
        nn.Tanh(),
        nn.Linear(hidden, n_actions + 1),
    )


class ToyPolicy:
    """A discrete actor-critic policy (``action_probs``, ``value``)."""

    def __init__(self, network: nn.Module, n_actions: int, delay_s: float = 0.0) -> None:
        self.network = network.eval()
        self.n_actions = n_actions
        self.delay_s = delay_s
        """Extra seconds per forward pass, to make batches observable in tests."""
        self.rows_seen: list[int] = []
        """Row count of every forward pass (for tests)."""

    @property
    def output_specs(self) -> dict[str, tuple[int, ...]]:
        return {"action_probs": (self.n_actions,), "value": ()}

    def decide(self, model_input: np.ndarray, deterministic: bool = False) -> Decision:
        self.rows_seen.append(len(model_input))
        if self.delay_s:
            time.sleep(self.delay_s)
        with torch.inference_mode():
            out = self.network(torch.from_numpy(np.ascontiguousarray(model_input)))
            probs = torch.softmax(out[:, : self.n_actions], dim=-1)
            actions = probs.argmax(dim=-1)
        return Decision(
            actions=actions.numpy(),
            outputs={"action_probs": probs.numpy(), "value": out[:, self.n_actions].numpy()},
        )


def toy_agent(
    seed: int = 0, obs_dim: int = OBS_DIM, delay_s: float = 0.0, hidden: int = HIDDEN
) -> Agent:
    """An agent around a freshly initialised :class:`ToyPolicy`."""
    network = toy_network(seed, obs_dim, hidden=hidden)
    return _agent(network, obs_dim, delay_s)


def _agent(network: nn.Module, obs_dim: int, delay_s: float = 0.0) -> Agent:
    obs_space = SpaceSpec(
        "box", (obs_dim,), "float32", low=(-np.inf,) * obs_dim, high=(np.inf,) * obs_dim
    )
    act_space = SpaceSpec("discrete", (), "int64", n=N_ACTIONS)
    return Agent(ToyPolicy(network, N_ACTIONS, delay_s), obs_space, act_space)


def write_toy_checkpoint(
    run_dir: Path,
    seed: int,
    version: int = 1,
    obs_dim: int = OBS_DIM,
    delay_s: float = 0.0,
    hidden: int = HIDDEN,
) -> Path:
    """Save a toy network as the latest checkpoint of ``run_dir``."""
    network = toy_network(seed, obs_dim, hidden=hidden)
    state: dict[str, Any] = {
        "algo": "toy",
        "env_steps": version * 1000,
        "version": version,
        "toy": {
            "weights": network.state_dict(),
            "obs_dim": obs_dim,
            "delay_s": delay_s,
            "hidden": hidden,
        },
    }
    return CheckpointStore(Path(run_dir) / "checkpoints").save(state)


def toy_loader(path: Path) -> LoadedModel:
    """Load a checkpoint written by :func:`write_toy_checkpoint`."""
    state = CheckpointStore(find_checkpoint_dir(Path(path))).load_latest()
    toy = state.get("toy")
    if not isinstance(toy, dict):
        raise CheckpointError(f"{path} is not a toy checkpoint")
    obs_dim = int(toy["obs_dim"])
    network = toy_network(0, obs_dim, hidden=int(toy.get("hidden", HIDDEN)))
    network.load_state_dict(toy["weights"])
    agent = _agent(network, obs_dim, float(toy.get("delay_s", 0.0)))
    return LoadedModel(agent, str(state["version"]), "fleetmind_toy")


class ServerThread:
    """An :class:`InferenceServer` on its own event loop thread (for blocking tests)::

    with ServerThread(path, ServeConfig(port=0, host="127.0.0.1"), toy_loader) as server:
        Client(f"127.0.0.1:{server.port}").server_ready()
    """

    def __init__(self, path: Path, config: ServeConfig, loader: Loader = toy_loader) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = InferenceServer(path, config, loader)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> ServerThread:
        """Start the loop and the server."""
        self._thread.start()
        self.port = self.call(self.server.start())
        return self

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop the server and the loop."""
        try:
            self.call(self.server.stop(grace))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
