"""The application factory: ``create_app(settings)`` wires the routes of the route table (:mod:`ingest.routes`),
the middlewares and the long-lived clients.

Nothing is created at import time. The Kafka producer and the object store are built in ``cleanup_ctx``
(closed on shutdown, after in-flight requests finished and the producer flushed), unless a test passes
fakes. On shutdown readiness turns false first, so a load balancer stops sending new requests.

Status reads are served from memory: the queue watermark's sampler and the status view's follower of the status
topic also run in ``cleanup_ctx`` (the real ones when no fake sink is given; tests pass ``offsets`` and
``status_view`` to choose theirs). Readiness stays false until the status view has caught up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from ingest.admission import Admission, Handler
from ingest.errors import ERROR_CODE, error_response
from ingest.keys import (
    ADMISSION,
    DATA_KEYS,
    LIFECYCLE,
    METRICS,
    QUEUE,
    ROUTES,
    SETTINGS,
    SINK,
    STATUS_VIEW,
    STORE,
    WAVE,
    Lifecycle,
)
from ingest.queue import NoOffsets, build_watermark, sampling
from ingest.routes import add_routes, admit_of, route_label, routes_for
from ingest.sealing import EdgeKeys
from ingest.security import Authenticator, Cors, client_of, headers_middleware
from ingest.status_view import StatusView, follow_status_topic
from intake.background import background
from intake.crypto import KeyCache, KeyStore, parse_keks
from intake.kafka import RecordSink, connection_config, running_sink
from intake.metrics import Metrics, build_metrics, http_outcome
from intake.offsets import KafkaOffsetSource, OffsetSource
from intake.settings import Settings
from intake.storage import ObjectStore, StorageUnavailable, StoreUnfit, build_store
from intake.store_probe import probe_store
from processors.waves import Wave

log = logging.getLogger("intake.ingest")

_HTTP_ERRORS = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type"}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is counted, and every error is JSON with a code (aiohttp's own errors and bugs too)."""
    metrics = request.app[METRICS]
    started = time.perf_counter()
    route = route_label(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        code = _HTTP_ERRORS.get(exc.status, "malformed_multipart" if exc.status == 400 else "internal_error")
        response = error_response(code, request, status=exc.status)
        if "Allow" in exc.headers:  # 405 must say which methods are allowed (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
    except Exception:
        log.exception("unhandled error", extra={"route": route})
        response = error_response("internal_error", request)
    code = "ok" if response.status < 400 else response.get(ERROR_CODE, "none")
    metrics.http_requests.labels(route, str(response.status), code).inc()
    metrics.http_duration.labels(route, http_outcome(response.status, code)).observe(time.perf_counter() - started)
    return response


def create_app(
    settings: Settings,
    *,
    sink: RecordSink | None = None,
    store: ObjectStore | None = None,
    metrics: Metrics | None = None,
    offsets: OffsetSource | None = None,
    status_view: StatusView | None = None,
) -> web.Application:
    """Build the API. Pass ``sink``/``store`` fakes in unit tests; otherwise real clients are built at start-up.

    ``offsets`` feeds the queue watermark (default: the broker's, unless a fake ``sink`` is given: then the
    watermark is never sampled unless ``offsets`` is). ``status_view`` is used as given (a test fills it);
    without one, a view following the status topic is built unless a fake ``sink`` is given or
    ``INTAKE_STATUS_VIEW_MAX_ENTRIES`` is 0."""
    metrics = metrics or build_metrics()
    admission = Admission(settings, metrics, client_of=client_of, admit_of=admit_of)
    cors = Cors(settings.http.cors_origin_list)
    authenticator = Authenticator(settings, metrics)
    app = web.Application(
        middlewares=[
            headers_middleware,
            errors_middleware,
            admission.gate,
            cors.middleware,
            authenticator.middleware,
            admission.middleware,
        ],
        client_max_size=settings.limits.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[ADMISSION] = admission
    app[LIFECYCLE] = Lifecycle()
    w = settings.wave
    app[WAVE] = Wave(w.number, w.opens_at, w.closes_at, w.quota)
    if sink is not None:
        app[SINK] = sink
        admission.sink = sink
    else:
        app.cleanup_ctx.append(_kafka_sink)
    if store is not None:
        app[STORE] = store
    else:
        app.cleanup_ctx.append(_object_store)
    app.cleanup_ctx.append(_data_keys)
    _status_reads(app, settings, metrics, offsets, status_view, real=sink is None)
    app.cleanup_ctx.append(_loop_lag)
    routes = routes_for(settings)
    app[ROUTES] = routes
    add_routes(app, routes)
    return app


def _status_reads(
    app: web.Application,
    settings: Settings,
    metrics: Metrics,
    offsets: OffsetSource | None,
    view: StatusView | None,
    *,
    real: bool,
) -> None:
    """The queue watermark and the status view, with the tasks that keep them current."""
    own = None
    if offsets is None and real:
        own = KafkaOffsetSource(
            partial(connection_config, settings), f"{settings.kafka.client_id}-queue", settings.kafka.request_timeout_ms
        )
    source = offsets or own
    watermark = build_watermark(settings, metrics, source or NoOffsets())
    app[QUEUE] = watermark
    if source is not None:

        async def _sampler(app: web.Application) -> AsyncIterator[None]:
            async with sampling(watermark, own):
                yield

        app.cleanup_ctx.append(_sampler)
    if view is None and real and settings.status.view_max_entries > 0:
        view = StatusView(settings.status.view_max_entries, metrics)
        metrics.status_view_caught_up.set(0)
        followed = view

        async def _follower(app: web.Application) -> AsyncIterator[None]:
            async with background(follow_status_topic(settings, followed), name="status-view"):
                yield

        app.cleanup_ctx.append(_follower)
    if view is not None:
        app[STATUS_VIEW] = view


async def _kafka_sink(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    probe_s = min(5.0, settings.http.readiness_max_age_s / 3)
    async with running_sink(settings, probe_interval_s=probe_s) as sink:
        app[SINK] = sink
        app[ADMISSION].sink = sink
        yield


async def _loop_lag(app: web.Application) -> AsyncIterator[None]:
    """Sample the event loop's lag for admission (and the gauge) while the app runs."""
    async with background(app[ADMISSION].lag.run(app[METRICS].loop_lag.set), name="loop-lag"):
        yield


async def _object_store(app: web.Application) -> AsyncIterator[None]:
    """Build the store, ensure the buckets and probe the store (:mod:`intake.store_probe`).

    A store that answers but ignores conditional create or encryption at rest, or refuses the service's
    credentials, stops the start (:class:`intake.storage.StoreUnfit` or the S3 error propagates). A store that
    does not answer only warns: uploads need Kafka and the key store (an upload whose data key is not cached
    answers 503 until the store is back), status reads answer 503 until the store is back, and the consumers,
    which write, never start without a passing probe.
    """
    settings = app[SETTINGS]
    store = build_store(settings)
    buckets = [settings.s3.bucket_photos, settings.s3.bucket_status, settings.s3.bucket_keys]
    try:
        await store.ensure_buckets(buckets)
        await probe_store(store, buckets, encrypt=settings.s3.encrypt, unversioned=[settings.s3.bucket_keys])
    except StorageUnavailable as exc:
        log.warning("object store not answering at start-up; not probed", extra={"error": str(exc)})
    except BaseException as exc:
        store.close()
        if isinstance(exc, StoreUnfit):
            log.critical("refusing to start: %s", exc)
        raise
    app[STORE] = store
    yield
    store.close()


async def _data_keys(app: web.Application) -> AsyncIterator[None]:
    """The applicants' data keys for sealing records (:mod:`ingest.sealing`), over the app's store. With
    ``INTAKE_SEAL_RECORDS=false`` (development only) records go out in plaintext: said loudly at start and by the
    ``intake_records_sealed`` gauge, never silently."""
    settings, metrics = app[SETTINGS], app[METRICS]
    sec = settings.security
    keys = KeyStore(app[STORE], settings.s3.bucket_keys, parse_keks(sec.data_keks))
    cache = KeyCache(sec.data_key_cache_entries, sec.data_key_cache_s)
    app[DATA_KEYS] = EdgeKeys(keys, cache, sec.data_key_timeout_s, metrics)
    metrics.records_sealed.set(1 if sec.seal_records else 0)
    if not sec.seal_records:
        log.warning("INTAKE_SEAL_RECORDS=false: personal data goes to Kafka in plaintext (development only)")
    yield
