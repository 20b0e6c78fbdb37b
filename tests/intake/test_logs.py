"""JSON logs: one object per line with the extra fields, and any 16-digit run masked as a last line of defence."""

from __future__ import annotations

import json
import logging
import re
import sys

import pytest

from intake.logs import ClientErrorFilter, JsonFormatter, configure_logging

NIK = "3171015705950001"


def record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad {NIK}")
        except ValueError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("intake.test", logging.WARNING, __file__, 1, msg, args, exc_info)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_one_json_object_with_time_level_logger_message_and_extras() -> None:
    out = json.loads(JsonFormatter().format(record("accepted %s", "x", submission_id="abc", count=3)))
    assert out["level"] == "WARNING" and out["logger"] == "intake.test"
    assert out["message"] == "accepted x"
    assert out["submission_id"] == "abc" and out["count"] == 3
    assert out["time"].endswith("+00:00")


def test_sixteen_digit_runs_are_masked_in_message_extras_and_traceback() -> None:
    line = JsonFormatter().format(record(f"nik {NIK}", exc=True, field=f"x{NIK}y"))
    assert NIK not in line
    out = json.loads(line)
    assert out["message"] == "nik [redacted-16-digits]"
    assert out["field"] == "x[redacted-16-digits]y"
    assert out["error_type"] == "ValueError"
    assert "[redacted-16-digits]" in out["traceback"]


def test_other_lengths_are_kept() -> None:
    out = json.loads(JsonFormatter().format(record("a 15 %s and 17 %s", NIK[:15], NIK + "1")))
    assert out["message"] == f"a 15 {NIK[:15]} and 17 {NIK}1"


def test_configure_logging_is_idempotent_and_quietens_aiokafka() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    kafka = logging.getLogger("aiokafka")
    saved_kafka = kafka.level
    try:
        configure_logging("info")
        configure_logging("INFO")
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.INFO
        assert kafka.level == logging.WARNING
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        kafka.setLevel(saved_kafka)


def test_malformed_requests_are_info_without_traceback() -> None:
    from aiohttp.http_exceptions import LineTooLong

    try:
        raise LineTooLong("a" * 100, "8190")
    except LineTooLong:
        refused = logging.LogRecord(
            "aiohttp.server", logging.ERROR, "p", 1, "Error handling request", None, sys.exc_info()
        )
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        bug = logging.LogRecord("aiohttp.server", logging.ERROR, "p", 1, "Error handling request", None, sys.exc_info())
    f = ClientErrorFilter()
    assert f.filter(refused) and f.filter(bug)
    out = json.loads(JsonFormatter().format(refused))
    assert (out["level"], out["error_type"]) == ("INFO", "LineTooLong") and "traceback" not in out
    assert bug.levelno == logging.ERROR and bug.exc_info is not None  # real errors keep their traceback


class _Carrier:
    def __str__(self) -> str:
        return f"carrier of {NIK}"


_SHAPES: dict[str, object] = {
    "string": f"nik={NIK}",
    "int": int(NIK),
    "whole float": float(NIK),
    "spaced": "3171 0157 0595 0001",
    "dotted": "3171.0157.0595.0001",
    "hyphenated": "3171-01-570595-0001",
    "nested dict": {"applicant": {"nik": NIK, "ids": [int(NIK)]}},
    "dict key": {NIK: "x"},
    "list": ["a", ["b", "3171 0157 0595 0001"]],
    "tuple": ("a", int(NIK)),
    "set": {NIK},
    "exception": ValueError(int(NIK)),
    "other object": _Carrier(),
}


@pytest.mark.parametrize("shape", list(_SHAPES))
def test_every_shape_of_a_nik_is_masked_in_an_extra_field(shape: str) -> None:
    line = JsonFormatter().format(record("x", field=_SHAPES[shape]))
    assert not _digits_of_a_nik(line), line
    assert "[redacted-16-digits]" in line


@pytest.mark.parametrize("shape", list(_SHAPES))
def test_every_shape_of_a_nik_is_masked_in_the_message_args(shape: str) -> None:
    line = JsonFormatter().format(record("value %s and %r", _SHAPES[shape], _SHAPES[shape]))
    assert not _digits_of_a_nik(line), line


def test_a_nik_in_an_exceptions_args_is_masked_in_the_traceback() -> None:
    try:
        raise KeyError(int(NIK), "3171 0157 0595 0001")
    except KeyError:
        rec = logging.LogRecord("intake.test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(rec)
    assert not _digits_of_a_nik(line), line
    assert json.loads(line)["error_type"] == "KeyError"


def test_values_that_are_not_niks_keep_their_type() -> None:
    out = json.loads(JsonFormatter().format(record("x", count=3, ratio=1701234567.123456, ok=True, none=None)))
    assert (out["count"], out["ratio"], out["ok"], out["none"]) == (3, 1701234567.123456, True, None)


def _digits_of_a_nik(line: str) -> bool:
    """True when the NIK's 16 digits appear in order with only separators (space, dot, hyphen) between them."""
    return NIK in re.sub(r"[ .\-]", "", line)
