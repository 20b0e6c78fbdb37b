"""Structured JSON logs on stderr, one object per line.

Extra fields passed with ``extra={...}`` (submission ids, keyed NIK hashes, error types) are included; by
convention nothing personal is ever passed. As a last line of defence, any run of exactly 16 digits in the
message or the fields is masked, so a NIK that slipped into a log call is never written.

A malformed HTTP request (bad request line, oversized or too many headers) is answered 400 by aiohttp's parser,
which logs it at ERROR with a traceback: anyone could flood the error log that way. :class:`ClientErrorFilter`
turns those records into one INFO line with the error type.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

_NIK_LIKE = re.compile(r"(?<!\d)\d{16}(?!\d)")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return _NIK_LIKE.sub("[redacted-16-digits]", value)
    return value


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
        return json.dumps(out, ensure_ascii=False, default=str)


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
