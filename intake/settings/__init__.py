"""Settings: one frozen, typed tree, read from the environment once.

Every field is declared (:mod:`~intake.settings.sections`) with :func:`~intake.settings.fields.setting`, which
names its environment variable and documents it; ``intake settings`` prints the table (name, default, meaning)
generated from these declarations, and the README's table is generated from the same. :func:`load_settings`
reads ``os.environ`` (or a given mapping) once and validates everything: a bad value raises
:class:`SettingsError` naming the variable, before any server or consumer starts.

The message-size chain lives in :class:`Limits` and nowhere else.

One concept per module: :mod:`~intake.settings.fields` (declaring and converting a field),
:mod:`~intake.settings.sections` (the tree), :mod:`~intake.settings.load` (environment in and out),
:mod:`~intake.settings.validate` (checks across fields), :mod:`~intake.settings.photo` (the photo policy's
variables), :mod:`~intake.settings.docs` (the documentation table). The public names are importable from here.
"""

from __future__ import annotations

from intake.settings.docs import SettingDoc, documented, markdown_table
from intake.settings.fields import SettingsError
from intake.settings.load import load_settings, to_environ
from intake.settings.sections import (
    ConsumerSettings,
    HttpSettings,
    KafkaSettings,
    Limits,
    S3Settings,
    SecuritySettings,
    Settings,
    StatusSettings,
    WaveSettings,
)

__all__ = [
    "ConsumerSettings",
    "HttpSettings",
    "KafkaSettings",
    "Limits",
    "S3Settings",
    "SecuritySettings",
    "SettingDoc",
    "Settings",
    "SettingsError",
    "StatusSettings",
    "WaveSettings",
    "documented",
    "load_settings",
    "markdown_table",
    "to_environ",
]
