"""Actor-critic learners build Adam on first use, so a process that only acts never does."""

import copy
import subprocess
import sys
from typing import Any, Literal

import torch
from tests.unit.algos.test_ppo_loss import DISCRETE, OBS, _trajectory

from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.algos.ppo.learner import PPOLearner


def test_acting_builds_no_optimizer_and_never_imports_torch_compiler() -> None:
    code = (
        "import sys\n"
        "from fleetmind.algos.registry import get_algorithm\n"
        "from fleetmind.core.spaces import SpaceSpec\n"
        "spec = get_algorithm('ppo')\n"
        "obs = SpaceSpec('box', (4,), 'float32')\n"
        "learner = spec.build(spec.config_cls(), obs, SpaceSpec('discrete', (), 'int64', n=2), 0)\n"
        "learner.rollout_policy(); learner.inference_policy(); learner.state_dict()\n"
        "print('torch._dynamo' in sys.modules, learner._optimizer is None)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "True"]


def _trained(backend: Literal["torch", "numpy"]) -> tuple[PPOConfig, PPOLearner, dict[str, Any]]:
    """A learner after one update and its state as a checkpoint file holds it."""
    config = PPOConfig(minibatch_size=8, update_epochs=2, backend=backend)
    learner = PPOLearner(config, OBS, DISCRETE, seed=0)
    learner.update(_trajectory())
    return config, learner, copy.deepcopy(learner.state_dict())


def _assert_next_updates_equal(a: PPOLearner, b: PPOLearner) -> None:
    for each in (a, b):  # minibatches are shuffled with torch's global RNG
        torch.manual_seed(1)
        each.update(_trajectory())
    for x, y in zip(a.net.parameters(), b.net.parameters(), strict=True):
        assert torch.equal(x, y)


def test_numpy_updates_checkpoint_without_an_optimizer_and_resume_identically() -> None:
    config, learner, state = _trained("numpy")
    assert "optimizer" not in state
    assert "numpy_adam" in state
    resumed = PPOLearner(config, OBS, DISCRETE, seed=5)
    resumed.load_state_dict(state)
    _assert_next_updates_equal(learner, resumed)


def test_torch_optimizer_state_survives_a_restore_before_the_optimizer_is_built() -> None:
    config, learner, state = _trained("torch")
    assert state["optimizer"]["state"]  # Adam's moments after a step
    restored = PPOLearner(config, OBS, DISCRETE, seed=0)
    restored.load_state_dict(state)
    assert restored._optimizer is None
    assert restored.state_dict()["optimizer"] == state["optimizer"]  # passed through unbuilt
    _assert_next_updates_equal(learner, restored)  # restored builds Adam, loads the moments


def test_a_restore_into_a_built_optimizer_loads_at_once() -> None:
    config, _, state = _trained("torch")
    restored = PPOLearner(config, OBS, DISCRETE, seed=0)
    built = restored.optimizer
    restored.load_state_dict(state)
    assert restored._optimizer is built
    assert restored._optimizer_state is None
    assert built.state_dict()["param_groups"] == state["optimizer"]["param_groups"]
    for moments, saved in zip(
        built.state_dict()["state"].values(), state["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(moments["exp_avg"], saved["exp_avg"])
