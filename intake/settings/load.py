"""Reading the tree from the environment once (:func:`load_settings`), and writing it back (:func:`to_environ`)."""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from intake.settings.fields import SettingsError, convert, fields_with_env
from intake.settings.photo import build_photo, photo_fields, photo_text
from intake.settings.sections import SECTIONS, Settings
from intake.settings.validate import validate


def _build(cls: type[Any], environ: Mapping[str, str]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields_with_env(cls):
        env = f.metadata["env"]
        if env in environ:
            kwargs[f.name] = convert(env, environ[env], hints[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SettingsError(f"{env} must be set: {f.metadata['doc']}")
    return cls(**kwargs)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the whole tree from ``environ`` (default: ``os.environ``), once.

    Raises :class:`SettingsError` for a missing required variable or an invalid value.
    """
    env = os.environ if environ is None else environ
    sections = {name: _build(cls, env) for name, cls in SECTIONS}
    top = _build_top(env)
    photo = build_photo(env, sections["limits"].max_photo_bytes)
    settings = Settings(photo=photo, **sections, **top)
    validate(settings)
    return settings


def _build_top(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields_with_env(Settings):
        env = f.metadata["env"]
        if env in environ:
            out[f.name] = convert(env, environ[env], str)
    return out


def to_environ(settings: Settings) -> dict[str, str]:
    """The environment variables that :func:`load_settings` turns back into ``settings`` (for child processes)."""
    out: dict[str, str] = {}
    sections: list[Any] = [getattr(settings, name) for name, _ in SECTIONS] + [settings]
    for section in sections:
        for f in fields_with_env(type(section)):
            value = getattr(section, f.name)
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, datetime):
                text = value.isoformat()
            else:
                text = str(value)
            out[f.metadata["env"]] = text
    for f, env in photo_fields():
        out[env] = photo_text(getattr(settings.photo, f.name))
    return out
