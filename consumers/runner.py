"""Builds one consumer group member from settings and runs it: the only place the worker's clients are made.

Owns and closes, in reverse order of creation: the process pool for image work (sized to the cores), the
object store, the producer used for results and dead letters, the registry watcher, and the Kafka consumer.

Before it connects to Kafka it ensures the buckets and probes the store (:mod:`intake.store_probe`): a store that
ignores conditional create or encryption at rest raises :class:`intake.storage.StoreUnfit` and the member
refuses to start, as does a store that does not answer (the consumer writes; it must never run unprobed).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
from collections.abc import Collection
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from aiokafka import ConsumerRebalanceListener

from consumers.consumer import TopicPartitionLike
from consumers.image_process import prepare_image_process
from consumers.lag import sample_lag
from consumers.photo_task import PhotoVerdict, check_photo
from consumers.pipeline import Pipeline
from consumers.registries import RegistryWatcher
from consumers.worker import RetryPolicy, RetryTopic, Worker
from intake.background import background
from intake.kafka import build_consumer, running_sink, start_client
from intake.metrics import Metrics, build_metrics
from intake.metrics_http import serve_metrics
from intake.settings import Settings
from intake.storage import StoreUnfit, build_store
from intake.store_probe import probe_store
from intake.topics import topic_names

log = logging.getLogger("intake.consumer")


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Forwards rebalance events to the worker once it exists."""

    def __init__(self) -> None:
        self.worker: Worker | None = None

    async def on_partitions_revoked(self, revoked: Collection[TopicPartitionLike]) -> None:
        if self.worker is not None:
            await self.worker.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Collection[TopicPartitionLike]) -> None:
        if self.worker is not None:
            await self.worker.on_partitions_assigned(assigned)


def pool_size(settings: Settings) -> int:
    """Processes for image work: the setting, or one per core when it is 0."""
    return settings.consumer.pool_workers or (os.cpu_count() or 1)


def build_pool(settings: Settings) -> ProcessPoolExecutor:
    """A process pool started with ``spawn`` (never fork an event loop with live sockets); each worker does its
    image work on one thread, since the pool already has a process per core, on a heap that keeps its buffers
    (:mod:`consumers.image_process`)."""
    return ProcessPoolExecutor(
        max_workers=pool_size(settings),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=prepare_image_process,
    )


async def run_consumer(settings: Settings, stop: asyncio.Event, metrics: Metrics | None = None) -> None:
    """Run one group member until ``stop`` is set; closes everything it built, in reverse order, before returning."""
    metrics = metrics or build_metrics()
    names = topic_names(settings)
    metrics.prime(names.submissions)
    listener = _Listener()
    async with contextlib.AsyncExitStack() as resources:
        pool = build_pool(settings)
        resources.callback(pool.shutdown, wait=True, cancel_futures=True)
        store = build_store(settings)
        resources.callback(store.close)
        s3 = settings.s3
        buckets = [s3.bucket_photos, s3.bucket_status, s3.bucket_registrations, s3.bucket_keys]
        try:
            await store.ensure_buckets(buckets)
            await probe_store(store, buckets, encrypt=settings.s3.encrypt, unversioned=[s3.bucket_keys])
        except StoreUnfit as exc:
            log.critical("refusing to start: %s", exc)
            raise
        sink = await resources.enter_async_context(running_sink(settings))
        if settings.consumer.metrics_port:  # 0 = off: no /metrics endpoint and no backlog sampler
            endpoint = await resources.enter_async_context(
                serve_metrics(metrics, settings.http.host, settings.consumer.metrics_port)
            )
            await resources.enter_async_context(sample_lag(settings, metrics))
            log.info("metrics endpoint", extra={"url": endpoint.url})
        registries = await asyncio.to_thread(
            RegistryWatcher, settings.consumer.registry_dir, settings.security.nik_pepper.encode()
        )
        await resources.enter_async_context(background(registries.watch(settings.consumer.registry_reload_s)))
        loop = asyncio.get_running_loop()
        policy = settings.photo

        async def photos(data: bytes) -> PhotoVerdict:
            return await loop.run_in_executor(pool, functools.partial(check_photo, data, policy))

        # Consume only once the producer has connected: a record processed before could not publish its outcome,
        # would be retried while it already shows a status, and could publish that status after a later one.
        while not await sink.wait_connected(5.0):
            if stop.is_set():
                return
            log.warning("waiting for Kafka: the producer has not connected yet")
        consumer = build_consumer(settings, names.submissions, names.retry, listener=listener)
        resources.push_async_callback(_stop_quietly, consumer)
        await start_client(consumer.start(), consumer.stop, settle_s=settings.kafka.request_timeout_s)
        worker = Worker(
            consumer=consumer,
            pipeline=Pipeline(settings, store, photos, sink, metrics, screener=registries),
            sink=sink,
            dlq_topic=names.dead_letter,
            metrics=metrics,
            retry=RetryPolicy(cap_s=settings.consumer.storage_retry_max_s),
            max_batch=settings.consumer.max_batch,
            retry_topic=RetryTopic(
                names.retry, settings.consumer.retry_topic_attempts, settings.consumer.retry_topic_delay_s
            ),
        )
        listener.worker = worker
        log.info("consumer started", extra={"topic": names.submissions, "pool": pool_size(settings)})
        await worker.run(stop)
    log.info("consumer stopped")


async def _stop_quietly(consumer: Any) -> None:
    with contextlib.suppress(Exception):
        await consumer.stop()
