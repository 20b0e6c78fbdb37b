"""JSON logs: one object per line with the extra fields, and any 16-digit run masked as a last line of defence."""

from __future__ import annotations

import json
import logging
import sys

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
