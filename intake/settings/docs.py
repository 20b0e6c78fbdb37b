"""The documentation of every variable, generated from the declarations: ``intake settings`` and the README's
table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from intake.settings.fields import fields_with_env
from intake.settings.photo import photo_fields, photo_text
from intake.settings.sections import SECTIONS, Settings
from processors.photo import PhotoPolicy
from processors.photo.policy import field_docs


@dataclass(frozen=True)
class SettingDoc:
    """One documented environment variable."""

    env: str
    default: str
    doc: str


def documented() -> list[SettingDoc]:
    """Every environment variable with its default and meaning, in declaration order."""
    docs: list[SettingDoc] = []
    classes: list[type[Any]] = [cls for _, cls in SECTIONS] + [Settings]
    for cls in classes:
        for f in fields_with_env(cls):
            if f.default is not dataclasses.MISSING:
                default = (
                    f.default
                    if isinstance(f.default, str)
                    else (f.default.isoformat() if isinstance(f.default, datetime) else repr(f.default))
                )
            else:
                default = "(required)"
            docs.append(SettingDoc(f.metadata["env"], default, f.metadata["doc"]))
    photo_docs, defaults = field_docs(), PhotoPolicy()
    for f, env in photo_fields():
        docs.append(SettingDoc(env, photo_text(getattr(defaults, f.name)), photo_docs[f.name]))
    return docs


def markdown_table() -> str:
    """The README's settings table, generated from the declarations above."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    lines += [f"| `{d.env}` | `{d.default}` | {d.doc} |" for d in documented()]
    return "\n".join(lines)
