"""Locust load test of the intake API: applicants registering with a KTP photo at a wave's opening.

Run it by hand (the API on :8080)::

    INTAKE_LOAD_SHAPE=spike .venv/bin/locust -f loadtests/locustfile.py --headless -H http://127.0.0.1:8080 \\
        --run-time 2m --csv reports/manual --csv-full-history
    .venv/bin/locust -f loadtests/locustfile.py --class-picker      # web UI: pick the spike or the soak

One :class:`Applicant` is one person: a fresh synthetic applicant (unique NIK) with one photo drawn from a
pre-generated set (0.2 to 5 MB), one ``Idempotency-Key`` kept across the retries of that submission, retries on
429/503 that wait the ``Retry-After`` (plus jitter), its own source address in ``X-Forwarded-For`` (the API must
run with ``INTAKE_TRUST_FORWARDED=true`` for it to count, else every request shares 127.0.0.1's rate limit),
then a few status polls with the status token, each after the ``poll_after_seconds`` the service asked for (with
``If-None-Match``). Then the next applicant takes the seat.

Environment:

* ``INTAKE_LOAD_SHAPE``: ``spike`` or ``soak`` runs that shape only, ``none`` no shape (``-u``/``-r`` apply);
  unset exposes both (pick one with ``--class-picker``; headless without a picker runs the first, the spike).
* ``INTAKE_LOAD_PHOTOS``: a size class (``200k``, ``500k``, ``1m``, ``3m``, ``5m``) or ``mix`` (default).
* ``INTAKE_LOAD_MODE``: ``applicant`` (default, the flow above) or ``probe`` (no think time, no retry, no poll:
  saturates the API to measure its ceiling).
* ``INTAKE_LOAD_WAIT``: think time between applicants on a seat, ``min,max`` seconds (default ``0.5,3``).
* ``INTAKE_LOAD_MAX_ATTEMPTS`` (6), ``INTAKE_LOAD_RETRY_CAP_S`` (60), ``INTAKE_LOAD_MAX_POLLS`` (3).
* ``INTAKE_LOAD_EVENTS``: a CSV path; one row per request is written there when the run stops (see
  :mod:`loadtests.outcomes`), which is what the benchmark's report is drawn from.
"""

from __future__ import annotations

import csv
import json
import os
import random
import sys
import time
from dataclasses import astuple
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # locust imports this file by path; the packages live at the repository root
    sys.path.insert(0, _ROOT)

from locust import FastHttpUser, LoadTestShape, between, constant, events, task  # noqa: E402
from locust.runners import MasterRunner  # noqa: E402

from intake.heap import tune_heap  # noqa: E402
from loadtests import outcomes, shapes  # noqa: E402
from loadtests.payloads import (  # noqa: E402
    BodyFactory,
    fresh_registration,
    idempotency_key,
    parse_classes,
    photo_set,
    pick_class,
    synthetic_address,
)
from loadtests.signing import upload_headers  # noqa: E402

REGISTER = "POST /v1/registrations"
STATUS = "GET /v1/submissions/[id]"
TERMINAL_STATES = frozenset({"rejected", "selected", "quota_exceeded"})

PHOTO_SPEC = os.environ.get("INTAKE_LOAD_PHOTOS", "mix")
MODE = os.environ.get("INTAKE_LOAD_MODE", "applicant")
MAX_ATTEMPTS = int(os.environ.get("INTAKE_LOAD_MAX_ATTEMPTS", "6"))
RETRY_CAP_S = float(os.environ.get("INTAKE_LOAD_RETRY_CAP_S", "60"))
MAX_POLLS = int(os.environ.get("INTAKE_LOAD_MAX_POLLS", "3"))
_WAIT = [float(x) for x in os.environ.get("INTAKE_LOAD_WAIT", "0.5,3").split(",")]
if MODE not in ("applicant", "probe"):
    raise SystemExit(f"INTAKE_LOAD_MODE must be applicant or probe, not {MODE!r}")

# Every attempt builds a body of the photo's size (0.2-5 MB) and the HTTP client copies it once more: with glibc's
# defaults each such buffer is mmap-ed and zeroed afresh (~110 page faults per upload of the mix, 0.25 ms of the
# generator's CPU against 0.07 ms from a kept heap), CPU the generator takes from the server on a shared machine.
tune_heap()
PHOTOS = photo_set(parse_classes(PHOTO_SPEC))
BODIES = BodyFactory()


# ----------------------------------------------------------------------------------------------- shapes
class _ScheduleShape(LoadTestShape):
    abstract = True
    schedule: shapes.SpikeSchedule | shapes.SoakSchedule

    def elapsed(self) -> float:
        return time.perf_counter() - self.start_time

    def tick(self) -> tuple[int, float] | None:
        users = self.schedule.users_at(self.elapsed())
        return None if users is None else (users, self.schedule.spawn_rate())


def _shape_classes() -> dict[str, type[_ScheduleShape]]:
    """The shape classes, built here so that only the chosen ones appear in this module's namespace."""

    class WaveSpikeShape(_ScheduleShape):
        """The wave opening: idle, peak within seconds, hold, decay (``loadtests.shapes.SpikeSchedule``)."""

        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.schedule = shapes.SpikeSchedule.from_env()

    class SoakShape(_ScheduleShape):
        """Steady load for a long time (``loadtests.shapes.SoakSchedule``)."""

        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.schedule = shapes.SoakSchedule.from_env()

    return {"spike": WaveSpikeShape, "soak": SoakShape}


SHAPE_CLASSES = _shape_classes()
_shape_choice = os.environ.get("INTAKE_LOAD_SHAPE", "")
if _shape_choice and _shape_choice != "none" and _shape_choice not in shapes.SHAPES:
    raise SystemExit(f"INTAKE_LOAD_SHAPE must be one of {', '.join(shapes.SHAPES)} or none, not {_shape_choice!r}")
# Locust runs every non-abstract LoadTestShape it finds in this module: expose only the chosen one(s).
if _shape_choice in ("", "spike"):
    WaveSpikeShape = SHAPE_CLASSES["spike"]
if _shape_choice in ("", "soak"):
    SoakShape = SHAPE_CLASSES["soak"]


# ----------------------------------------------------------------------------------------- per-request log
_ROWS: list[outcomes.Outcome] = []
_IMPORT_PID = os.getpid()
"""With ``--processes`` locust forks its workers after importing this file: a process with another pid is a worker."""
_PART: list[Any] = []
"""A forked worker's open part file and its CSV writer (:func:`_keep`)."""


def _keep(row: outcomes.Outcome) -> None:
    """Keep one row: in memory (written at the end), or, in a forked worker, appended at once to its own part
    next to ``INTAKE_LOAD_EVENTS`` (a worker of a shape-driven run may be stopped without a test_stop)."""
    path = os.environ.get("INTAKE_LOAD_EVENTS")
    if not path or os.getpid() == _IMPORT_PID:
        _ROWS.append(row)
        return
    if not _PART:
        f = outcomes.part_path(Path(path), os.getpid()).open("w", newline="", buffering=1)
        _PART.extend((f, csv.writer(f)))
        _PART[1].writerow(outcomes.COLUMNS)
    _PART[1].writerow(astuple(row))


def _record(**kw: Any) -> None:
    """Listener of every request locust reports: one :class:`outcomes.Outcome` row."""
    ctx = kw.get("context") or {}
    response, exception = kw.get("response"), kw.get("exception")
    response_time = float(kw.get("response_time") or 0.0)
    status = int(getattr(response, "status_code", 0) or 0)
    outcome = ctx.get("outcome") or (type(exception).__name__ if exception is not None and not status else "")
    _keep(
        outcomes.Outcome(
            start=float(kw.get("start_time") or time.time() - response_time / 1000.0),
            latency_ms=round(response_time, 3),
            kind=str(ctx.get("kind", "register" if kw.get("name") == REGISTER else "status")),
            status=status,
            outcome=outcome or outcomes.classify(status, None),
            size_class=str(ctx.get("size_class", "")),
            bytes=int(ctx.get("bytes", 0)),
            attempt=int(ctx.get("attempt", 1)),
        )
    )


def _write_rows(environment: Any = None, **_: Any) -> None:
    """At the end of the test: the rows to ``INTAKE_LOAD_EVENTS``. With several processes (``--processes``) each
    forked worker has appended its rows to its own part as they came (:func:`_keep`), and the master has none."""
    path = os.environ.get("INTAKE_LOAD_EVENTS")
    if not path or isinstance(getattr(environment, "runner", None), MasterRunner):
        return
    if _PART:
        _PART[0].flush()
    if os.getpid() == _IMPORT_PID:
        outcomes.write(Path(path), list(_ROWS))


events.request.add_listener(_record)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_write_rows)  # type: ignore[no-untyped-call]
# A worker of a shape-driven run (--processes) may quit without its own test_stop; every process fires quitting.
events.quitting.add_listener(_write_rows)  # type: ignore[no-untyped-call]


def _retry_after(headers: Any, default: float = 5.0) -> float:
    if headers is None:
        return default
    try:
        return max(float(headers.get("Retry-After") or default), 0.0)
    except (TypeError, ValueError):
        return default


def _body_of(resp: Any) -> bytes:
    try:
        content = resp.content
    except Exception:  # a transport error has no content
        return b""
    return content if isinstance(content, bytes) else b""


class Applicant(FastHttpUser):
    """One applicant per iteration: register (with retries), then follow the status for a while."""

    host = "http://127.0.0.1:8080"
    wait_time = constant(0) if MODE == "probe" else between(_WAIT[0], _WAIT[-1])
    network_timeout = 60.0
    connection_timeout = 10.0
    concurrency = 1

    def on_start(self) -> None:
        self.rng = random.Random()
        self.address = synthetic_address(self.rng)

    @task
    def register_and_follow(self) -> None:
        # A new applicant on this seat: new person, new photo, new Idempotency-Key, own source address.
        self.address = synthetic_address(self.rng)
        label = pick_class(self.rng, PHOTO_SPEC)
        body = BODIES.body(fresh_registration(self.rng), self.rng.choice(PHOTOS[label]))
        key = idempotency_key()
        attempts = 1 if MODE == "probe" else MAX_ATTEMPTS
        for attempt in range(1, attempts + 1):
            accepted, wait_s = self._register(body, key, label, attempt)
            if accepted is not None:
                if MODE == "applicant":
                    self._follow(accepted)
                return
            if wait_s is None or attempt == attempts:
                return
            # Honour Retry-After; jitter spreads the herd so the retries do not arrive as one wave again.
            time.sleep(min(wait_s * self.rng.uniform(1.0, 1.5), RETRY_CAP_S))

    def _register(self, body: bytes, key: str, label: str, attempt: int) -> tuple[dict[str, Any] | None, float | None]:
        """One POST. Returns (the 202 body, None), (None, seconds to wait before a retry) or (None, None)."""
        headers = {
            "Content-Type": BODIES.content_type,
            "Idempotency-Key": key,
            "Accept": "application/json",
            "X-Forwarded-For": synthetic_address(self.rng) if MODE == "probe" else self.address,
            **upload_headers(key),  # a fresh signature per attempt, over the same Idempotency-Key
        }
        ctx = {"kind": "register", "size_class": label, "bytes": len(body), "attempt": attempt}
        with self.client.post(
            "/v1/registrations",
            data=body,  # type: ignore[arg-type]  # bytes are sent as they are
            headers=headers,
            name=REGISTER,
            catch_response=True,
            context=ctx,
        ) as resp:
            status = int(resp.status_code or 0)
            outcome = outcomes.classify(status, _body_of(resp))
            if status == 0:
                outcome = type(resp.error).__name__ if getattr(resp, "error", None) else "transport_error"
            resp.request_meta["context"]["outcome"] = outcome
            if status == 202:
                try:
                    answer = json.loads(_body_of(resp))
                except ValueError:
                    resp.failure("202 without a JSON body")
                    return None, None
                resp.success()
                return answer, None
            resp.failure(f"{status} {outcome}")
            if status in (429, 503):
                return None, _retry_after(resp.headers)
            if status == 0:
                return None, 5.0  # connection refused or reset: back off as if told to
            return None, None

    def _follow(self, accepted: dict[str, Any]) -> None:
        """Poll the status with the token, each time after the delay the service asked for."""
        url = str(accepted.get("status_url", ""))
        token = str(accepted.get("status_token", ""))
        wait_s = float(accepted.get("poll_after_seconds") or 10)
        etag = ""
        for _ in range(MAX_POLLS):
            time.sleep(min(wait_s, RETRY_CAP_S))
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "X-Forwarded-For": self.address,
            }
            if etag:
                headers["If-None-Match"] = etag
            with self.client.get(
                url, headers=headers, name=STATUS, catch_response=True, context={"kind": "status"}
            ) as resp:
                status = int(resp.status_code or 0)
                outcome = outcomes.classify(status, _body_of(resp) if status not in (200, 304) else None)
                resp.request_meta["context"]["outcome"] = outcome
                if status in (200, 304):
                    resp.success()
                    etag = resp.headers.get("ETag") or etag
                    state = ""
                    if status == 200:
                        try:
                            view = json.loads(_body_of(resp))
                            state = str(view.get("state", ""))
                            wait_s = float(view.get("poll_after_seconds") or wait_s)
                        except ValueError:
                            pass
                    if state in TERMINAL_STATES:
                        return
                    wait_s = max(wait_s, _retry_after(resp.headers, wait_s))
                else:
                    resp.failure(f"{status} {outcome}")
                    wait_s = _retry_after(resp.headers, wait_s)
