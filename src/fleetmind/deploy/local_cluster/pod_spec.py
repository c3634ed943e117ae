"""From a pod template to what runs: command line, environment, volumes, probes, user.

The container's image is not pulled: :class:`Image` says what its entrypoint,
default arguments, environment and working directory are, and ``commands`` maps
an executable to the command line that stands for it on this machine (the
fleetmind image's ``fleetmind`` is ``python -m fleetmind`` with this checkout's
sources first on ``PYTHONPATH``). Volumes are folders of this machine: a claim is
the folder the caller gives for it (or one the cluster makes and keeps, like a
dynamically provisioned volume), an ``emptyDir`` a fresh folder per pod, a Secret
or ConfigMap a folder of files written from the caller's values.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import fleetmind
from fleetmind.core.errors import ConfigError
from fleetmind.deploy.local_cluster.container import ContainerSpec, Mount
from fleetmind.deploy.local_cluster.manifests import Obj
from fleetmind.deploy.local_cluster.probes import parse_probe

logger = logging.getLogger(__name__)
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


@dataclass(frozen=True)
class Image:
    """What a container image would bring: entrypoint, default args, env, workdir."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = "/"


FLEETMIND_IMAGE = Image(
    entrypoint=("fleetmind",),
    cmd=("serve", "/models"),
    env={
        "HOME": "/home/fleetmind",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "MPLCONFIGDIR": "/tmp/matplotlib",
    },
)
"""deploy/Dockerfile's ENTRYPOINT, CMD and ENV (its WORKDIR is absent here: ``/``)."""


def default_image_paths() -> tuple[Path, ...]:
    """Where this machine keeps what the image would hold: the interpreter's environment,
    its base installation and fleetmind's sources."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(fleetmind.__file__).resolve().parents[1]}
    return tuple(sorted(paths))


def default_commands() -> dict[str, tuple[str, ...]]:
    """``fleetmind`` -> this interpreter running this checkout's fleetmind."""
    return {"fleetmind": (sys.executable, "-m", "fleetmind")}


@dataclass
class PodInputs:
    """What the caller provides for the pods: volumes, Secrets, images, overrides."""

    workdir: Path
    """Pod folders (emptyDirs, Secret files, home) and logs go under it."""
    claims: Mapping[str, Path] = field(default_factory=dict)
    """PersistentVolumeClaim name -> folder; a claim not given gets one under workdir."""
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Secret name -> key -> value (for volumes, env and envFrom)."""
    config_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """ConfigMap name -> key -> value (the manifests' own ConfigMaps are added)."""
    images: Mapping[str, Image] = field(default_factory=dict)
    """Image reference -> Image; any other image is ``default_image``."""
    default_image: Image = FLEETMIND_IMAGE
    commands: Mapping[str, tuple[str, ...]] = field(default_factory=default_commands)
    env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Workload name -> variables set over the rendered ones (e.g. a test loader)."""
    run_as_users: bool | None = None
    """Honour runAsUser, runAsGroup and fsGroup. Unset: when any user may run this
    interpreter (an interpreter under a private home, such as root's pyenv, cannot
    be run by the image's user; the processes then stay root)."""
    read_only_root: bool = True
    """Honour readOnlyRootFilesystem (``/`` read-only inside the pod, volumes as mounted)."""
    image_paths: tuple[Path, ...] = field(default_factory=default_image_paths)
    """Folders that stand for the image's contents. A volume mounted over one of their
    parents (an emptyDir at ``/tmp`` over a checkout under ``/tmp``) would hide them,
    as it never hides an image's own files: they are mounted back, read-only."""

    def honours_users(self) -> bool:
        """Whether pods run as their securityContext's user (see ``run_as_users``)."""
        if self.run_as_users is None:
            self.run_as_users = runnable_by_anyone(Path(sys.executable))
            if not self.run_as_users:
                logger.warning(
                    "%s cannot be run by other users: pods run as root, not as their runAsUser",
                    sys.executable,
                )
        return self.run_as_users


@dataclass(frozen=True)
class PodMeta:
    """Identity of one pod."""

    name: str
    namespace: str
    uid: str
    address: str
    owner: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    hostname: str
    fqdn: str | None = None


def container_specs(
    template: Obj, meta: PodMeta, inputs: PodInputs, folder: Path
) -> tuple[list[ContainerSpec], list[ContainerSpec]]:
    """(init containers, containers) of a pod template; ``folder``: the pod's own folder."""
    pod = template.get("spec", {})
    volumes = _volumes(pod, meta, inputs, folder)
    security = pod.get("securityContext") or {}
    grace = float(pod.get("terminationGracePeriodSeconds", 30))

    def build(c: Obj) -> ContainerSpec:
        return _container(c, pod, security, volumes, meta, inputs, grace)

    return (
        [build(c) for c in pod.get("initContainers") or []],
        [build(c) for c in pod["containers"]],
    )


def _container(
    c: Obj,
    pod: Obj,
    security: Obj,
    volumes: Mapping[str, Path],
    meta: PodMeta,
    inputs: PodInputs,
    grace: float,
) -> ContainerSpec:
    image = inputs.images.get(c.get("image", ""), inputs.default_image)
    env = _environment(c, image, meta, inputs)
    argv = _argv(c, image, env, inputs)
    ports = {p["name"]: int(p["containerPort"]) for p in c.get("ports") or [] if "name" in p}
    mounts = []
    for m in c.get("volumeMounts") or []:
        if m["name"] not in volumes:
            raise ConfigError(f"container {c['name']} mounts volume {m['name']!r}, not in the pod")
        source = volumes[m["name"]] / m.get("subPath", "")
        mounts.append(Mount(source, m["mountPath"], bool(m.get("readOnly", False))))
    mounts += _image_paths_under(mounts, inputs.image_paths)
    own = c.get("securityContext") or {}
    users = inputs.honours_users()
    uid = own.get("runAsUser", security.get("runAsUser")) if users else None
    gid = own.get("runAsGroup", security.get("runAsGroup", uid)) if users else None
    fs_group = security.get("fsGroup") if users else None
    return ContainerSpec(
        name=c["name"],
        argv=tuple(argv),
        env=env,
        mounts=tuple(mounts),
        startup=parse_probe(c.get("startupProbe"), ports),
        readiness=parse_probe(c.get("readinessProbe"), ports),
        liveness=parse_probe(c.get("livenessProbe"), ports),
        uid=uid,
        gid=gid,
        groups=(int(fs_group),) if fs_group is not None else (),
        read_only_root=inputs.read_only_root and bool(own.get("readOnlyRootFilesystem", False)),
        cwd=c.get("workingDir") or image.workdir,
        hostname=meta.hostname,
        grace_s=grace,
    )


def _argv(c: Obj, image: Image, env: Mapping[str, str], inputs: PodInputs) -> list[str]:
    """Kubernetes' rule: ``command`` replaces the entrypoint, ``args`` the image's CMD."""
    if "command" in c:
        argv = [*c["command"], *c.get("args", [])]
    else:
        argv = [*image.entrypoint, *c.get("args", image.cmd)]
    if not argv:
        raise ConfigError(f"container {c['name']} has no command and its image no entrypoint")
    argv = [_VAR_REF.sub(lambda m: env.get(m[1], m[0]), a) for a in argv]
    return [*inputs.commands.get(argv[0], (argv[0],)), *argv[1:]]


def _environment(c: Obj, image: Image, meta: PodMeta, inputs: PodInputs) -> dict[str, str]:
    source_root = str(Path(fleetmind.__file__).resolve().parents[1])
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "PYTHONPATH": source_root,
        "HOSTNAME": meta.hostname,
        **image.env,
    }
    for ref in c.get("envFrom") or []:
        prefix = ref.get("prefix", "")
        if "secretRef" in ref:
            values = _lookup(inputs.secrets, ref["secretRef"]["name"], "Secret")
        else:
            values = _lookup(inputs.config_maps, ref["configMapRef"]["name"], "ConfigMap")
        env.update({prefix + k: v for k, v in values.items()})
    for var in c.get("env") or []:
        if "value" in var:
            env[var["name"]] = _VAR_REF.sub(lambda m: env.get(m[1], m[0]), str(var["value"]))
        elif "valueFrom" in var:
            value = _value_from(var["valueFrom"], meta, inputs)
            if value is not None:
                env[var["name"]] = value
    env.update(inputs.env.get(meta.owner, {}))
    return env


def _value_from(source: Obj, meta: PodMeta, inputs: PodInputs) -> str | None:
    if "secretKeyRef" in source or "configMapKeyRef" in source:
        secret = "secretKeyRef" in source
        ref = source["secretKeyRef" if secret else "configMapKeyRef"]
        table = inputs.secrets if secret else inputs.config_maps
        values = table.get(ref["name"])
        if values is None or ref["key"] not in values:
            if ref.get("optional"):
                return None
            kind = "Secret" if secret else "ConfigMap"
            raise ConfigError(f"{kind} {ref['name']!r} key {ref['key']!r} is not provided")
        return values[ref["key"]]
    if "fieldRef" in source:
        return _field(source["fieldRef"]["fieldPath"], meta)
    raise ConfigError(f"env valueFrom {sorted(source)} is not supported by the local cluster")


def _field(path: str, meta: PodMeta) -> str:
    fields = {
        "metadata.name": meta.name,
        "metadata.namespace": meta.namespace,
        "metadata.uid": meta.uid,
        "status.podIP": meta.address,
        "status.podIPs": meta.address,
        "spec.nodeName": "local",
        "spec.serviceAccountName": "default",
    }
    if path in fields:
        return fields[path]
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        table = meta.labels if match[1] == "labels" else meta.annotations
        return table.get(match[2], "")
    raise ConfigError(f"fieldRef {path!r} is not supported by the local cluster")


def _lookup(table: Mapping[str, Mapping[str, str]], name: str, kind: str) -> Mapping[str, str]:
    if name not in table:
        raise ConfigError(f"{kind} {name!r} is not provided; pass its values to the cluster")
    return table[name]


def _volumes(pod: Obj, meta: PodMeta, inputs: PodInputs, folder: Path) -> dict[str, Path]:
    """Volume name -> the folder of this machine that stands for it."""
    security = pod.get("securityContext") or {}
    fs_group = security.get("fsGroup") if inputs.honours_users() else None
    out: dict[str, Path] = {}
    for volume in pod.get("volumes") or []:
        name = volume["name"]
        if "persistentVolumeClaim" in volume:
            out[name] = claim_folder(volume["persistentVolumeClaim"]["claimName"], inputs)
            if fs_group is not None:
                _own_group(out[name], int(fs_group))
        elif "emptyDir" in volume:
            out[name] = folder / "volumes" / name
            out[name].mkdir(parents=True)
            out[name].chmod(0o777)
        elif "secret" in volume or "configMap" in volume:
            secret = "secret" in volume
            ref = volume["secret" if secret else "configMap"]
            ref_name = ref["secretName"] if secret else ref["name"]
            table = inputs.secrets if secret else inputs.config_maps
            values = _lookup(table, ref_name, "Secret" if secret else "ConfigMap")
            out[name] = _write_files(folder / "volumes" / name, values, ref)
        elif "hostPath" in volume:
            out[name] = Path(volume["hostPath"]["path"])
        else:
            raise ConfigError(f"volume {name!r} ({sorted(volume)}) is not supported here")
    return out


def claim_folder(claim: str, inputs: PodInputs) -> Path:
    """The folder of claim ``claim``: the caller's, or one kept under the workdir."""
    given = inputs.claims.get(claim)
    if given is not None:
        return Path(given)
    made = inputs.workdir / "claims" / claim
    made.mkdir(parents=True, exist_ok=True)
    return made


def _write_files(target: Path, values: Mapping[str, str], ref: Obj) -> Path:
    items = ref.get("items") or [{"key": k, "path": k} for k in values]
    mode = int(ref.get("defaultMode", 0o644))
    target.mkdir(parents=True)
    for item in items:
        if item["key"] not in values:
            raise ConfigError(f"key {item['key']!r} is not among the values given for the volume")
        path = target / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(values[item["key"]])
        path.chmod(int(item.get("mode", mode)))
    target.chmod(0o755)
    return target


def _own_group(root: Path, gid: int) -> None:
    """What kubelet does for ``fsGroup``: the volume's files belong to the group, readable."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        shutil.chown(path, group=gid)
        extra = 0o2070 if path.is_dir() else 0o060
        path.chmod(path.stat().st_mode | extra)


def _image_paths_under(mounts: list[Mount], image_paths: tuple[Path, ...]) -> list[Mount]:
    """Read-only mounts of the image paths that a volume mount would hide, each onto
    itself, with its mount point made inside the volume that hides it."""
    out = []
    for path in image_paths:
        hiding = [m for m in mounts if path != Path(m.target) and path.is_relative_to(m.target)]
        if not hiding or any(path == Path(m.target) for m in mounts):
            continue
        inner = max(hiding, key=lambda m: len(Path(m.target).parts))
        (Path(inner.source) / path.relative_to(inner.target)).mkdir(parents=True, exist_ok=True)
        out.append(Mount(path, str(path), read_only=True))
    return out


def runnable_by_anyone(executable: Path) -> bool:
    """Whether every folder on the way to ``executable`` and the file itself are o+x."""
    real = executable.resolve()
    return all(os.stat(p).st_mode & 0o001 for p in (real, *real.parents))


def mount_points(specs: list[ContainerSpec]) -> list[Path]:
    """Every mount target of ``specs`` (they must exist before the pod starts)."""
    return [Path(m.target) for s in specs for m in s.mounts]
