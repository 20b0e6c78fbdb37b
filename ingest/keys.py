"""Typed application keys: what the app holds, set by :func:`ingest.app.create_app` and its cleanup contexts."""

from __future__ import annotations

from aiohttp import web

from intake.kafka import RecordSink
from intake.metrics import Metrics
from intake.settings import Settings
from intake.storage import ObjectStore
from processors.waves import Wave

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
SINK = web.AppKey("sink", RecordSink)
STORE = web.AppKey("store", ObjectStore)
WAVE = web.AppKey("wave", Wave)
