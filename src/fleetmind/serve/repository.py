"""Which models and versions are served, loaded from disk and kept up to date.

PATH is either

* a **run directory** (``PATH/checkpoints/latest.json``): one model, named after
  the directory unless a name is given; each new checkpoint replaces the served
  version, or
* a **model repository**: ``PATH/<model>/<version>/`` folders (numeric versions),
  each a run directory or checkpoint folder; every version is served and the
  highest is the default.

:meth:`ModelRepository.refresh` rescans PATH: a new or changed checkpoint is
loaded and warmed up on a worker thread, then swapped in between two requests;
a version removed from disk is drained and unloaded. A version that fails to
load is logged and reported in :attr:`ModelRepository.failures`; whatever was
serving keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from fleetmind.algos.checkpoint import LATEST, find_checkpoint_dir
from fleetmind.core.errors import ConfigError, FleetmindError, NotFoundError, echo
from fleetmind.serve.batcher import BatchObserver, BatchPolicy
from fleetmind.serve.explain_process import ExplainProcess
from fleetmind.serve.model import LoadedModel, RequestLimits, ServedModel, build_served_model
from fleetmind.serve.team import SEPARATOR, member_name

logger = logging.getLogger(__name__)

Loader = Callable[[Path], LoadedModel]
"""Loads the latest checkpoint under a folder (blocking; runs on a worker thread)."""


@dataclass(frozen=True)
class Candidate:
    """A checkpoint found on disk that should be served."""

    model: str
    folder: str
    """Version folder name, or ``""`` for a run directory."""
    path: Path
    fingerprint: str
    """Changes whenever a new checkpoint is written there."""


def checkpoint_fingerprint(path: Path) -> str | None:
    """The contents of the latest-checkpoint manifest under ``path``; None if absent."""
    try:
        return (find_checkpoint_dir(path) / LATEST).read_text()
    except (FleetmindError, OSError):
        return None


def is_run_directory(path: Path) -> bool:
    """True when ``path`` holds checkpoints itself (rather than model folders)."""
    return (path / "checkpoints" / LATEST).is_file() or (path / LATEST).is_file()


def is_version(name: str) -> bool:
    """True for a version folder name: ASCII digits only.

    ``str.isdigit`` alone also accepts ``'²'`` or Arabic-Indic digits, which
    ``int()`` then rejects.
    """
    return name.isascii() and name.isdigit()


def scan(root: Path, model_name: str | None, skipped: set[Path] | None = None) -> list[Candidate]:
    """Every servable checkpoint under ``root`` (see the module docstring).

    Folders inside a model folder whose names are not versions are added to ``skipped``.
    """
    if is_run_directory(root):
        fingerprint = checkpoint_fingerprint(root)
        name = model_name or root.resolve().name
        return [Candidate(name, "", root, fingerprint)] if fingerprint else []
    found = []
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for version_dir in sorted(p for p in model_dir.iterdir() if p.is_dir()):
            if not is_version(version_dir.name):
                if skipped is not None:
                    skipped.add(version_dir)
                continue
            fingerprint = checkpoint_fingerprint(version_dir)
            if fingerprint is not None:
                found.append(Candidate(model_dir.name, version_dir.name, version_dir, fingerprint))
    return found


def default_loader(path: Path) -> LoadedModel:
    """Load a fleetmind checkpoint: an agent (:func:`fleetmind.algos.loading.load_agent`)
    or a team, served whole and agent by agent (:mod:`fleetmind.serve.team`)."""
    from fleetmind.algos.loading import load_agent, read_checkpoint
    from fleetmind.algos.team.loading import is_team_checkpoint, team_from_state

    state, ckpt = read_checkpoint(path)
    if is_team_checkpoint(state):
        from fleetmind.serve.team import team_agent

        team = team_from_state(state, ckpt)
        agents = team.team.agents
        platform = f"fleetmind_{team.algo}"
        return LoadedModel(team_agent(agents), str(team.version), platform, members=agents)
    loaded = load_agent(path)
    return LoadedModel(loaded.agent, str(loaded.version), f"fleetmind_{loaded.algo}")


def resolve_loader(spec: str | None) -> Loader:
    """The loader named ``module:function``, or :func:`default_loader` for ``None``."""
    if spec is None:
        return default_loader
    import importlib

    module_name, _, attr = spec.partition(":")
    try:
        loader = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"cannot import loader {spec!r} (expected module:function): {exc}"
        ) from exc
    if not callable(loader):
        raise ConfigError(f"loader {spec!r} is not callable")
    return loader  # type: ignore[no-any-return]


class ModelRepository:
    """The served model versions, by name."""

    def __init__(
        self,
        root: Path,
        policy: BatchPolicy,
        loader: Loader = default_loader,
        model_name: str | None = None,
        observer_for: Callable[[str], BatchObserver] | None = None,
        limits: RequestLimits | None = None,
    ) -> None:
        self.root = Path(root)
        self._limits = limits or RequestLimits()
        self._policy = policy
        self._loader = loader
        self._model_name = model_name
        self._observer_for = observer_for
        self._models: dict[str, dict[str, ServedModel]] = {}
        self._defaults: dict[str, ServedModel] = {}
        self._seen: dict[tuple[str, str], str] = {}
        self._teams: dict[str, list[str]] = {}
        """Served team -> its agents (each served as ``team.agent``)."""
        self.failures: dict[tuple[str, str], str] = {}
        """``(model, folder) -> error`` for checkpoints that failed to load."""
        self.skipped: set[Path] = set()
        """Folders in model folders that are not versions (each logged once)."""
        self._lock = asyncio.Lock()
        self._explain = ExplainProcess()
        """Computes every version's explanations (started by the first one)."""
        if not self.root.is_dir():
            raise ConfigError(f"{self.root} is not a directory; pass a run directory or repository")

    def names(self) -> list[str]:
        """Served model names."""
        return sorted(self._defaults)

    def versions(self, name: str) -> list[str]:
        """Served versions of ``name``, oldest first."""
        return sorted(self._models.get(name, {}), key=_version_key)

    def get(self, name: str, version: str = "") -> ServedModel:
        """The model version to run; NotFoundError names what is served."""
        if not version:
            model = self._defaults.get(name)
            if model is None:
                self._check_member(name)
                raise NotFoundError(
                    f"model {echo(name)} is not served; served models: {self.names() or 'none'}"
                )
            return model
        model = self._models.get(name, {}).get(version)
        if model is None:
            self.get(name)  # unknown model: say so first
            raise NotFoundError(
                f"model {echo(name)} has no version {echo(version)}; served: {self.versions(name)}"
            )
        return model

    def _check_member(self, name: str) -> None:
        """NotFoundError listing the agents when ``name`` is ``team.agent`` of a served
        team that has no such agent."""
        team, dot, agent = name.rpartition(SEPARATOR)
        agents = self._teams.get(team) if dot else None
        if agents is not None:
            raise NotFoundError(
                f"team {echo(team)} has no agent {echo(agent)}; its agents: "
                f"{', '.join(member_name(team, a) for a in agents)}"
            )

    def all_models(self) -> list[ServedModel]:
        """Every served version."""
        return [m for versions in self._models.values() for m in versions.values()]

    async def refresh(self) -> None:
        """Load new or changed checkpoints and unload removed ones."""
        async with self._lock:
            skipped: set[Path] = set()
            candidates = await asyncio.to_thread(scan, self.root, self._model_name, skipped)
            for folder in sorted(skipped - self.skipped):
                logger.warning(
                    "skipping %s: a version folder's name must be ASCII digits (1, 2, ...)",
                    ascii(str(folder)),
                )
            self.skipped = skipped
            for cand in candidates:
                key = (cand.model, cand.folder)
                if self._seen.get(key) != cand.fingerprint:
                    self._seen[key] = cand.fingerprint
                    await self._load(cand)
            present = {(c.model, c.folder) for c in candidates}
            if not is_run_directory(self.root):
                await self._unload_missing(present)

    async def _load(self, cand: Candidate) -> None:
        observer = self._observer_for(cand.model) if self._observer_for else None
        try:
            loaded = await asyncio.to_thread(self._loader, cand.path)
            version = cand.folder or loaded.version or "1"
            build = partial(
                _build,
                policy=self._policy,
                observer=observer,
                limits=self._limits,
                cand=cand,
                explain_process=self._explain,
            )
            model = await asyncio.to_thread(build, cand.model, version, loaded)
            members = [
                await asyncio.to_thread(build, member_name(cand.model, agent), version, part)
                for agent, part in _member_models(loaded)
            ]
        except Exception as exc:
            message = str(exc) if isinstance(exc, FleetmindError) else repr(exc)
            self.failures[(cand.model, cand.folder)] = message
            logger.error("cannot load %s (%s); still serving the previous one", cand.path, message)
            return
        self.failures.pop((cand.model, cand.folder), None)
        if loaded.members:
            self._teams[cand.model] = list(loaded.members)
        for member in members:
            await self._install(cand, member)
        await self._install(cand, model)

    async def _install(self, cand: Candidate, model: ServedModel) -> None:
        """Serve ``model`` (found as ``cand``) in place of the version it replaces."""
        model.batcher.start()
        versions = self._models.setdefault(model.name, {})
        replaced = list(versions.values()) if not cand.folder else []
        if cand.folder and cand.folder in versions:
            replaced.append(versions[cand.folder])
        for old in replaced:
            versions.pop(old.version, None)
        versions[model.version] = model
        self._set_default(model.name)
        logger.info("serving model %s version %s from %s", model.name, model.version, cand.path)
        for old in replaced:
            if old is not model:
                await old.close()

    def _set_default(self, name: str) -> None:
        versions = self._models.get(name, {})
        if versions:
            self._defaults[name] = versions[max(versions, key=_version_key)]
        else:
            self._defaults.pop(name, None)
            self._models.pop(name, None)

    async def _unload_missing(self, present: set[tuple[str, str]]) -> None:
        for model in self.all_models():
            team = model.name.rpartition(SEPARATOR)[0]
            owner = team if team in self._teams else model.name
            if (owner, model.version) not in present:
                self._models[model.name].pop(model.version, None)
                self._seen.pop((model.name, model.version), None)
                self._set_default(model.name)
                logger.info("version %s of model %s is gone; unloading", model.version, model.name)
                await model.close()

    async def close(self) -> None:
        """Drain and stop every batcher, then the explainer process."""
        models = self.all_models()
        self._models.clear()
        self._defaults.clear()
        await asyncio.gather(*(m.batcher.close() for m in models))
        await self._explain.close()


def _member_models(loaded: LoadedModel) -> list[tuple[str, LoadedModel]]:
    """Each agent of a team as a model of its own."""
    return [
        (name, LoadedModel(agent, loaded.version, loaded.platform))
        for name, agent in loaded.members.items()
    ]


def _build(
    name: str,
    version: str,
    loaded: LoadedModel,
    *,
    cand: Candidate,
    policy: BatchPolicy,
    observer: BatchObserver | None,
    limits: RequestLimits,
    explain_process: ExplainProcess,
) -> ServedModel:
    return build_served_model(
        name,
        version,
        loaded,
        cand.path,
        policy=policy,
        observer=observer,
        limits=limits,
        explain_process=explain_process,
    )


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if is_version(version) else (-1, version)


def describe_failures(failures: dict[tuple[str, str], str]) -> str:
    """A one-line summary of failed loads, for logs and errors."""
    return "; ".join(f"{m}/{f or '-'}: {e}" for (m, f), e in sorted(failures.items()))
