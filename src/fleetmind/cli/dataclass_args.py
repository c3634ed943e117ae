"""Build argparse options from config dataclasses, help text from field docstrings.

Options use ``default=SUPPRESS`` so that only flags the user typed reach the
namespace: defaults < ``--config FILE.yaml`` < flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fleetmind.config import coerce, field_docs, unwrap_optional


def _flag(prefix: str, name: str) -> str:
    return "--" + (f"{prefix}." if prefix else "") + name.replace("_", "-")


def _dest(prefix: str, name: str) -> str:
    return (f"{prefix}__" if prefix else "") + name


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    prefix: str = "",
    skip: Iterable[str] = (),
) -> None:
    """Add one ``--flag`` per field of ``cls`` (``--prefix.flag`` when prefixed)."""
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    skipped = set(skip)
    for f in dataclasses.fields(cls):
        if f.name in skipped or not f.init:
            continue
        inner, optional = unwrap_optional(hints[f.name])
        if dataclasses.is_dataclass(inner):
            continue
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        help_text = docs.get(f.name, "")
        shown = "off" if default is None and optional else default
        if inner is bool and default is None:
            shown = "auto"
        help_text = f"{help_text} (default: {shown})".replace("%", "%%")
        metavar = f.name.upper()
        if inner is bool:
            parser.add_argument(
                _flag(prefix, f.name),
                dest=_dest(prefix, f.name),
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
            continue
        if typing.get_origin(inner) is typing.Literal:
            metavar = "{" + ",".join(str(a) for a in typing.get_args(inner)) + "}"
        elif inner is Path:
            metavar = "PATH"
        parser.add_argument(
            _flag(prefix, f.name),
            dest=_dest(prefix, f.name),
            metavar=metavar,
            default=argparse.SUPPRESS,
            help=help_text,
        )


def explicit_values(args: argparse.Namespace, cls: type, prefix: str = "") -> dict[str, Any]:
    """The fields of ``cls`` the user gave on the command line, as raw strings."""
    values = vars(args)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        dest = _dest(prefix, f.name)
        if dest in values:
            out[f.name] = values[dest]
    return out


def parse_value(cls: type, name: str, raw: str, where: str) -> Any:
    """Convert one raw flag value to the field's type (ConfigError if it does not fit)."""
    return coerce(raw, typing.get_type_hints(cls)[name], where)
