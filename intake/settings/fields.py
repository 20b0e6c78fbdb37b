"""How a setting is declared (:func:`setting`: its environment variable and documentation on the field) and
how one raw value is read (:func:`convert`; a bad value raises :class:`SettingsError` naming the variable)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import field
from datetime import datetime
from typing import Any


class SettingsError(ValueError):
    """A setting is missing or invalid. The message names the environment variable, never a secret value."""


def setting(env: str, doc: str, default: Any = dataclasses.MISSING, secret: bool = False) -> Any:
    """Declare a settings field bound to environment variable ``env`` with its documentation."""
    meta = {"env": env, "doc": doc, "secret": secret}
    if default is dataclasses.MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def fields_with_env(cls: type[Any]) -> Iterator[dataclasses.Field[Any]]:
    for f in dataclasses.fields(cls):
        if "env" in f.metadata:
            yield f


def convert(env: str, raw: str, typ: Any) -> Any:
    try:
        if typ is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if typ is int:
            return int(raw)
        if typ is float:
            return float(raw)
        if typ is str:
            return raw
        if typ is datetime:
            value = datetime.fromisoformat(raw)
            if value.tzinfo is None:
                raise ValueError("a time zone offset is required")
            return value
    except ValueError as exc:
        raise SettingsError(f"{env}: {exc}") from None
    raise SettingsError(f"{env}: unsupported type {typ!r}")  # pragma: no cover - a bug in the declarations
