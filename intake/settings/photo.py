"""The photo gate's policy as settings: ``INTAKE_PHOTO_<FIELD>`` for the fields of
:class:`~processors.photo.PhotoPolicy` (documented there). Loads no image library."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from intake.settings.fields import SettingsError, convert
from processors.photo import PhotoPolicy

PHOTO_PREFIX = "INTAKE_PHOTO_"
PHOTO_NOT_SETTINGS = frozenset({"max_bytes", "card_output"})


def photo_fields() -> Iterator[tuple[dataclasses.Field[Any], str]]:
    """The fields of :class:`PhotoPolicy` that are settings, with their environment variable."""
    for f in dataclasses.fields(PhotoPolicy):
        if f.name not in PHOTO_NOT_SETTINGS:
            yield f, PHOTO_PREFIX + f.name.upper()


def photo_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def build_photo(environ: Mapping[str, str], max_bytes: int) -> PhotoPolicy:
    hints = typing.get_type_hints(PhotoPolicy)
    kwargs: dict[str, Any] = {}
    for f, env in photo_fields():
        if env not in environ:
            continue
        if hints[f.name] == tuple[str, ...]:
            kwargs[f.name] = tuple(v.strip().upper() for v in environ[env].split(",") if v.strip())
        else:
            kwargs[f.name] = convert(env, environ[env], hints[f.name])
    try:
        return PhotoPolicy(max_bytes=max_bytes, **kwargs)
    except ValueError as exc:  # PhotoPolicy names the fields; the variables are INTAKE_PHOTO_<FIELD>
        raise SettingsError(f"{PHOTO_PREFIX}*: {exc}") from None
