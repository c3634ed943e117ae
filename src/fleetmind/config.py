"""Typed configuration dataclasses: field docs, loading from mappings, dumping.

Every service and algorithm is configured by a dataclass with one docstring per
field (the string literal right below the field). The CLI builds its ``--help``
from those docstrings, and YAML config files are validated against the fields::

    @dataclass
    class PPOConfig:
        learning_rate: float = 3e-4
        \"\"\"Adam step size.\"\"\"

    cfg = config_from_mapping(PPOConfig, {"learning_rate": 1e-3}, where="ppo")
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import textwrap
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from fleetmind.core.errors import ConfigError

T = TypeVar("T")


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Docstrings of a dataclass's fields, read from its source (base classes first)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0]
        if not isinstance(body, ast.ClassDef):
            continue
        for stmt, nxt in zip(body.body, body.body[1:], strict=False):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``(inner, True)`` for ``X | None``; ``(tp, False)`` otherwise."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def coerce(value: Any, tp: Any, where: str) -> Any:  # noqa: PLR0911 - one branch per type
    """Convert a YAML/CLI value to the annotated type, or raise ConfigError."""
    inner, optional = unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where} must not be null")
    origin = typing.get_origin(inner)
    try:
        if dataclasses.is_dataclass(inner) and isinstance(inner, type):
            if not isinstance(value, dict):
                raise ConfigError(f"{where} must be a mapping of its fields, got {value!r}")
            return config_from_mapping(inner, value, where)
        if inner is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        if inner is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ConfigError(f"{where} must be an integer, got {value!r}")
            return int(value)
        if inner is float:
            if isinstance(value, bool):
                raise ConfigError(f"{where} must be a number, got {value!r}")
            return float(value)
        if inner is str:
            if not isinstance(value, str | int | float):
                raise ConfigError(f"{where} must be a string, got {value!r}")
            return str(value)
        if inner is Path:
            return Path(value)
        if origin is typing.Literal:
            allowed = typing.get_args(inner)
            if value not in allowed:
                raise ConfigError(f"{where} must be one of {list(allowed)}, got {value!r}")
            return value
        if origin is tuple:
            (item,) = {a for a in typing.get_args(inner) if a is not Ellipsis}
            if isinstance(value, str):
                value = [v for v in value.replace(",", " ").split() if v]
            return tuple(coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}: cannot read {value!r} as {inner}: {exc}") from exc
    return value


def config_from_mapping(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys raise ConfigError naming them."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in known:
            raise unknown_key_error(where, key, known)
        kwargs[name] = coerce(value, hints[name], f"{where}.{key}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def unknown_key_error(where: str, key: object, known: Iterable[str]) -> ConfigError:
    """The error for ``key``, which is none of ``known``: close matches, then every setting."""
    names = sorted(known)
    close = difflib.get_close_matches(str(key).replace("-", "_"), names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"unknown config key {where}.{key}{hint} (settings: {', '.join(names)})")


def partition_settings(
    data: Mapping[str, Any], classes: Sequence[type], where: str = "config"
) -> list[dict[str, Any]]:
    """Split one flat mapping of settings into one mapping per dataclass of ``classes``.

    A key goes to the first class with a field of that name (``-`` reads as ``_``);
    a key that names no field raises the ConfigError of :func:`config_from_mapping`,
    with close matches and the settings of every class::

        train, dist = partition_settings({"steps": 10, "actors": 2}, (TrainConfig, DistConfig))
    """
    owner: dict[str, int] = {}
    for index, cls in reversed(list(enumerate(classes))):
        owner.update({f.name: index for f in dataclasses.fields(cls) if f.init})
    parts: list[dict[str, Any]] = [{} for _ in classes]
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in owner:
            raise unknown_key_error(where, key, owner)
        parts[owner[name]][name] = value
    return parts


def coerce_fields(cls: type, data: Mapping[str, Any], where: str = "config") -> dict[str, Any]:
    """``data`` (field names of ``cls``) with each value converted to its field's type."""
    hints = typing.get_type_hints(cls)
    return {name: coerce(value, hints[name], f"{where}.{name}") for name, value in data.items()}


def merge_into(instance: T, data: dict[str, Any], where: str = "config") -> T:
    """A copy of ``instance`` with the keys of ``data`` replaced (nested dataclasses merged)."""
    base = config_to_dict(instance)

    def deep(dst: dict[str, Any], src: dict[str, Any]) -> None:
        for k, v in src.items():
            key = str(k).replace("-", "_")
            if isinstance(v, dict) and isinstance(dst.get(key), dict):
                deep(dst[key], v)
            else:
                dst[key] = v

    deep(base, data)
    return config_from_mapping(type(instance), base, where)


def config_to_dict(instance: Any) -> dict[str, Any]:
    """A JSON-compatible dict of a config dataclass (paths become strings)."""

    def conv(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: conv(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple | list):
            return [conv(v) for v in value]
        return value

    result = conv(instance)
    if not isinstance(result, dict):
        raise TypeError(f"{instance!r} is not a dataclass instance")
    return result
