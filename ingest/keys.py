"""Typed keys: what the app holds (set by :func:`ingest.app.create_app` and its cleanup contexts) and what a
request carries (set by the middlewares)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from ingest.admission import Admission
from ingest.queue import QueueWatermark
from ingest.sealing import EdgeKeys
from ingest.status_view import StatusView
from intake.auth import Principal
from intake.kafka import RecordSink
from intake.metrics import Metrics
from intake.settings import Settings
from intake.storage import ObjectStore
from processors.waves import Wave

if TYPE_CHECKING:
    from ingest.routes import Route


@dataclass
class Lifecycle:
    """Mutable process state: ``draining`` turns readiness false during a graceful shutdown."""

    draining: bool = False


SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
SINK = web.AppKey("sink", RecordSink)
STORE = web.AppKey("store", ObjectStore)
WAVE = web.AppKey("wave", Wave)
ADMISSION = web.AppKey("admission", Admission)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
QUEUE = web.AppKey("queue", QueueWatermark)
DATA_KEYS = web.AppKey("data_keys", EdgeKeys)
"""The applicants' data keys for sealing records (set at start-up, once the store exists)."""
STATUS_VIEW = web.AppKey("status_view", StatusView)
"""Set only when the process materialises the status topic (absent: every status read goes to the store)."""
ROUTES: web.AppKey[tuple[Route, ...]] = web.AppKey("routes")
"""The rows of :data:`ingest.routes.ROUTES` this app serves (the demo's only with ``INTAKE_DEMO_PAGE``)."""

PRINCIPAL = web.RequestKey("principal", Principal)
"""Who signed the request, on requests to routes that need a signing scope (:mod:`ingest.routes`)."""
CONTINUE_DEFERRED = web.RequestKey("continue_deferred", bool)
"""True on a request whose route defers ``100 Continue`` to its handler (:mod:`ingest.expect`)."""
