"""The inference server against hostile or careless input: folder names, echoed input,
malformed bytes to health and reflection, oversized requests, overload."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from fleetmind.serve import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.testing import ServerThread, write_toy_checkpoint

OBS = np.zeros((2, 4), dtype=np.float32)


def _config(**overrides: object) -> ServeConfig:
    base = {"host": "127.0.0.1", "port": 0, "reload_interval_s": None}
    return ServeConfig(**(base | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize("folder", ["\u00b2", "\u0661", "\uff11"])  # ², Arabic-Indic 1, fullwidth 1
def test_version_folder_with_non_ascii_digits_is_skipped(
    tmp_path: Path, folder: str, caplog: pytest.LogCaptureFixture
) -> None:
    write_toy_checkpoint(tmp_path / "pole" / "1", seed=1, version=1)
    write_toy_checkpoint(tmp_path / "pole" / folder, seed=2, version=2)
    with (
        caplog.at_level(logging.WARNING, "fleetmind.serve.repository"),
        ServerThread(tmp_path, _config()) as server,
        Client(f"127.0.0.1:{server.port}") as client,
    ):
        assert client.model_metadata("pole").versions == ("1",)
        write_toy_checkpoint(tmp_path / "pole" / f"{folder}{folder}", seed=3, version=3)
        server.call(server.server.repository.refresh())
        assert client.model_metadata("pole").versions == ("1",)
        assert client.infer("pole", OBS)["action"].shape == (2,)
    skips = [r for r in caplog.records if "skipping" in r.getMessage()]
    assert len(skips) == 2  # each folder once, not once per rescan
