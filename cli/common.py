"""What every command shares: the settings, loaded and validated once at start (exit 2 when invalid)."""

from __future__ import annotations

import sys

from intake.logs import configure_logging
from intake.settings import Settings, SettingsError, load_settings

CONNECT_S = 30.0
"""How long a batch command (waves close, dlq replay, erase) waits for Kafka before giving up (exit 5)."""


def load_or_exit() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"intake: invalid settings: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    return settings
