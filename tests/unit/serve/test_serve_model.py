"""Where a served model's forward passes run when the configuration leaves it open."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetmind.serve.batcher import BatchPolicy
from fleetmind.serve.model import LoadedModel, build_served_model
from fleetmind.serve.testing import toy_agent


@pytest.mark.parametrize(
    ("delay_s", "in_thread", "expected"),
    [
        (0.0, None, False),  # a small policy runs inline on the event loop
        (0.005, None, True),  # a slow one gets a worker thread
        (0.005, False, False),  # an explicit choice always wins
        (0.0, True, True),
    ],
)
def test_forward_placement(
    delay_s: float, in_thread: bool | None, expected: bool, tmp_path: Path
) -> None:
    loaded = LoadedModel(toy_agent(delay_s=delay_s))
    policy = BatchPolicy(in_thread=in_thread)
    model = build_served_model("m", "1", loaded, tmp_path, policy=policy)
    assert model.batcher.in_thread is expected
