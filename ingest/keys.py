"""Typed application keys: what the app holds, set by :func:`ingest.app.create_app` and its cleanup contexts."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ingest.admission import Admission
from ingest.queue import QueueWatermark
from ingest.sealing import EdgeKeys
from ingest.status_view import StatusView
from intake.kafka import RecordSink
from intake.metrics import Metrics
from intake.settings import Settings
from intake.storage import ObjectStore
from processors.waves import Wave


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
