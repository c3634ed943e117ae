"""deploy/Dockerfile, checked without building it: its inputs exist, its command is ours."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from fleetmind.deploy.pod_parts import RUN_AS
from fleetmind.deploy.serve_pod import container
from fleetmind.deploy.serve_spec import GRPC_PORT, METRICS_PORT, ServeDeployConfig, checked

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_every_file_the_image_copies_exists() -> None:
    lines = (ROOT / ".containerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    copies = [args for word, args in instructions() if word in ("COPY", "ADD")]
    assert copies
    for args in copies:
        parts = shlex.split(args)
        if any(p.startswith("--from=") for p in parts):
            continue
        for source in [p for p in parts if not p.startswith("--")][:-1]:
            assert (ROOT / source).exists(), source
            assert source.split("/")[0] not in ignored, source


def test_the_image_runs_what_the_manifests_run(tmp_path: Path) -> None:
    from fleetmind.serve.testing import write_toy_checkpoint

    write_toy_checkpoint(tmp_path / "run", seed=1, version=1)
    pod = container(checked(ServeDeployConfig(name="x", token_secret="x-tokens"), tmp_path / "run"))
    found = dict(instructions())
    assert json.loads(found["ENTRYPOINT"]) == ["fleetmind"]
    assert "command" not in pod  # the image's entrypoint runs
    assert json.loads(found["CMD"]) == pod["args"] == ["serve", "/models"]
    assert found["USER"] == f"{RUN_AS}:{RUN_AS}"
    assert {int(p) for p in found["EXPOSE"].split()} == {GRPC_PORT, METRICS_PORT}
    assert {p["containerPort"] for p in pod["ports"]} == {GRPC_PORT, METRICS_PORT}


def test_torch_is_installed_from_the_lock_before_the_package() -> None:
    runs = [args for word, args in instructions() if word == "RUN"]
    torch = next(i for i, r in enumerate(runs) if r.rstrip().endswith(" torch"))
    package = next(
        i for i, r in enumerate(runs) if "/src" in r and "install" in r and "torch" not in r
    )
    assert torch < package
    assert all("-c /src/requirements/lock.txt" in runs[i] for i in (torch, package))
    build_stages = [args for word, args in instructions() if word == "FROM"]
    assert len(build_stages) == 2  # the final stage gets the venv, never the build tools
