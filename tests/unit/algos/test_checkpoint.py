import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from fleetmind.algos.checkpoint import LATEST, CheckpointStore, find_checkpoint_dir
from fleetmind.core.errors import CheckpointError


def _state(steps: int) -> dict[str, object]:
    return {"env_steps": steps, "version": steps // 10, "learner": {"w": torch.arange(4.0)}}


def test_round_trip_and_manifest(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    path = store.save(_state(120))
    assert path.name == "ckpt-000000000120.pt"
    manifest = json.loads((tmp_path / LATEST).read_text())
    assert manifest["file"] == path.name
    assert manifest["env_steps"] == 120
    loaded = store.load_latest()
    assert loaded["format"] == "fleetmind.checkpoint/1"
    assert torch.equal(loaded["learner"]["w"], torch.arange(4.0))


def test_keeps_only_newest(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=2)
    for steps in (10, 20, 30):
        store.save(_state(steps))
    assert sorted(p.name for p in tmp_path.glob("ckpt-*.pt")) == [
        "ckpt-000000000020.pt",
        "ckpt-000000000030.pt",
    ]
    assert store.load_latest()["env_steps"] == 30


def test_corrupted_file_is_detected_and_named(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    path = store.save(_state(5))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"ckpt-000000000005\.pt is corrupted"):
        store.load_latest()


def test_missing_and_malformed_manifest(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    with pytest.raises(CheckpointError, match=r"latest\.json does not exist"):
        store.load_latest()
    (tmp_path / LATEST).write_text("{not json")
    with pytest.raises(CheckpointError, match=r"latest\.json is corrupted"):
        store.load_latest()


def test_interrupted_write_leaves_previous_latest(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save(_state(1))
    # A crash mid-write leaves only a temporary file behind; latest is untouched.
    (tmp_path / ".ckpt-000000000002.pt.abc.tmp").write_bytes(b"partial")
    assert store.load_latest()["env_steps"] == 1


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
import torch
from fleetmind.algos.checkpoint import CheckpointStore
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # die mid-write
CheckpointStore(Path(sys.argv[1])).save({"env_steps": 2, "learner": {}})
"""


def test_temporary_file_of_a_killed_writer_is_removed(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    live = store.save(_state(1))
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], check=False)
    assert proc.returncode == -9
    (left,) = tmp_path.glob(".ckpt-000000000002.pt.*.tmp")
    unrelated = tmp_path / "notes.tmp"
    unrelated.write_text("not ours")

    assert store.remove_stale_temp_files() == [left]
    assert not left.exists()
    assert {p.name for p in tmp_path.iterdir()} == {LATEST, live.name, unrelated.name}
    assert store.load_latest()["env_steps"] == 1


def test_stale_manifest_temporary_is_removed_and_live_files_kept(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    live = store.save(_state(3))
    fd, _ = tempfile.mkstemp(prefix=f".{LATEST}.", suffix=".tmp", dir=tmp_path)
    with open(fd, "wb") as fh:
        fh.write(b'{"file": "ckpt-0')
    store.remove_stale_temp_files()
    assert {p.name for p in tmp_path.iterdir()} == {LATEST, live.name}
    assert CheckpointStore(tmp_path / "absent").remove_stale_temp_files() == []


def test_find_checkpoint_dir(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    assert find_checkpoint_dir(tmp_path) == tmp_path / "checkpoints"
    with pytest.raises(CheckpointError, match="holds no checkpoints"):
        find_checkpoint_dir(tmp_path / "elsewhere")
