"""Structured JSON logs on stderr, one object per line.

Extra fields passed with ``extra={...}`` (submission ids, keyed NIK hashes, error types) are included; by
convention nothing personal is ever passed. As a last line of defence, every NIK-shaped value is masked, so a
NIK that slipped into a log call is never written: a run of 16 digits, also with the separators an applicant may
type (space, ``.``, ``-``, as :func:`processors.nik.normalize_nik` accepts), in the message, the traceback (the
exception's text and args) and every extra field, whatever its shape: a string, an ``int``, a whole ``float``, a nested
``dict`` (keys and values), ``list``, ``tuple`` or ``set``, or any other object (logged as its masked ``str``).

A malformed HTTP request (bad request line, oversized or too many headers) is answered 400 by aiohttp's parser,
which logs it at ERROR with a traceback: anyone could flood the error log that way. :class:`ClientErrorFilter`
turns those records into one INFO line with the error type.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from datetime import UTC, datetime
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

_NIK_LIKE = re.compile(r"(?<!\d)\d(?:[ .\-]*\d){15}(?!\d)")
"""16 digits, optionally separated by runs of space, dot or hyphen (the forms a NIK is accepted in)."""
_REDACTED = "[redacted-16-digits]"
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _mask(value: Any) -> Any:
    """``value`` with every NIK-shaped part masked, as a JSON-serialisable value; containers are walked."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _NIK_LIKE.sub(_REDACTED, value)
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return value  # a measurement, never a NIK (and a timestamp's dot is not a separator)
    if isinstance(value, int | float):
        text = str(int(value))
        return value if _NIK_LIKE.search(text) is None else _NIK_LIKE.sub(_REDACTED, text)
    if isinstance(value, dict):
        return {_mask(str(k)): _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask(v) for v in value]
    return _mask(str(value))


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object with time, level, logger, message and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _mask(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = _mask(value)
        if record.exc_info and record.exc_info[0] is not None:
            out["error_type"] = record.exc_info[0].__name__
            out["traceback"] = _mask(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class ClientErrorFilter(logging.Filter):
    """On ``aiohttp.server``: a request the HTTP parser refused is the client's error, logged at INFO without
    its traceback (the type is kept in ``error_type``); anything else passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "malformed request refused by the HTTP parser", None
            record.error_type = type(exc).__name__
            record.exc_info, record.exc_text = None, None
        return True


def configure_logging(level: str) -> None:
    """Send every log record to stderr as JSON at ``level``. Idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    server = logging.getLogger("aiohttp.server")
    server.filters[:] = [f for f in server.filters if not isinstance(f, ClientErrorFilter)]
    server.addFilter(ClientErrorFilter())
