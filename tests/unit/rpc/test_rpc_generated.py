"""The committed protoc output matches proto/ (run scripts/gen-protos after editing a .proto)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
GENERATED = ROOT / "src" / "fleetmind" / "rpc" / "generated"


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    subprocess.run(
        [str(ROOT / "scripts" / "gen-protos"), str(tmp_path)],
        check=True,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    fresh = sorted(p.name for p in tmp_path.iterdir())
    assert fresh, "scripts/gen-protos produced nothing"
    for name in fresh:
        committed = GENERATED / name
        assert committed.is_file(), f"{name} is not committed; run scripts/gen-protos"
        assert committed.read_text() == (tmp_path / name).read_text(), (
            f"{name} is stale; run scripts/gen-protos"
        )
