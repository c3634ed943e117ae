"""fleetmind.envs is built in layers: adapters, then scenarios, then the registry."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]

ADAPTERS = {
    "fleetmind.envs.spaces",
    "fleetmind.envs.gym_vector",
    "fleetmind.envs.team",
    "fleetmind.envs.env_entry",
}
"""The low-level adapters: they know no scenario and no registry."""


def _import_cycles() -> ModuleType:
    path = ROOT / "scripts" / "import_cycles.py"
    spec = importlib.util.spec_from_file_location("import_cycles", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _envs_graph() -> dict[str, set[str]]:
    """Module -> the fleetmind.envs modules it imports (in functions too)."""
    tool = _import_cycles()
    known = tool.module_names(ROOT / "src")
    return {
        name: {m for m in tool.imports_of(name, path, known) if m.startswith("fleetmind.envs")}
        for name, path in known.items()
        if name.startswith("fleetmind.envs")
    }


def test_no_import_circle_inside_envs() -> None:
    assert _import_cycles().cycles(_envs_graph()) == []


def test_adapters_import_only_adapters() -> None:
    graph = _envs_graph()
    for name in sorted(ADAPTERS):
        assert graph[name] <= ADAPTERS, f"{name} imports {sorted(graph[name] - ADAPTERS)}"


def test_only_the_registry_and_its_users_import_the_registry() -> None:
    graph = _envs_graph()
    users = {name for name, imports in graph.items() if "fleetmind.envs.registry" in imports}
    assert not any(name.startswith("fleetmind.envs.scenarios") for name in users)
