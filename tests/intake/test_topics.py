"""Topic specifications: the registrations topic is compacted, with the retention the programme sets."""

from __future__ import annotations

from dataclasses import replace

import pytest

from intake.settings import SettingsError, load_settings
from intake.topics import topic_names, topic_specs
from tests.intake.test_settings import ENV
from tests.support import unit_settings


def _registrations_config(retention_ms: int) -> dict[str, str]:
    s = unit_settings()
    s = replace(s, kafka=replace(s.kafka, registrations_retention_ms=retention_ms))
    name = topic_names(s).registrations
    assert name == "intake.registrations.v1"
    return next(t for t in topic_specs(s) if t.name == name).config


def test_registrations_topic_is_compacted_by_default() -> None:
    config = _registrations_config(-1)
    assert (config["cleanup.policy"], config["retention.ms"]) == ("compact", "-1")
    # an erased registration's earlier records are compacted away within the submissions topic's retention
    assert config["max.compaction.lag.ms"] == str(unit_settings().kafka.retention_ms)


def test_registrations_topic_with_a_retention_is_compacted_and_deleted() -> None:
    config = _registrations_config(90 * 24 * 3600 * 1000)
    assert (config["cleanup.policy"], config["retention.ms"]) == ("compact,delete", str(90 * 24 * 3600 * 1000))


@pytest.mark.parametrize("value", ["0", "-2"])
def test_registrations_retention_must_be_minus_one_or_positive(value: str) -> None:
    with pytest.raises(SettingsError, match="INTAKE_REGISTRATIONS_RETENTION_MS"):
        load_settings({**ENV, "INTAKE_REGISTRATIONS_RETENTION_MS": value})


def test_export_window_must_be_positive() -> None:
    with pytest.raises(SettingsError, match="INTAKE_EXPORT_WINDOW"):
        load_settings({**ENV, "INTAKE_EXPORT_WINDOW": "0"})
