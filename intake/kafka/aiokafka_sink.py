""":class:`AIOKafkaSink`: the :class:`~intake.kafka.sink.RecordSink` over aiokafka (pure Python)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from intake.kafka.config import producer_config
from intake.kafka.kept import KeptSink, runs_to_the_end
from intake.kafka.sink import Delivery, Headers, QueueUnavailable
from intake.kafka.starting import start_client
from intake.settings import Settings


def build_producer(settings: Settings) -> AIOKafkaProducer:
    """A new, unstarted producer. The caller starts and stops it."""
    return AIOKafkaProducer(**producer_config(settings))


_PRODUCER_BROKEN = (OutOfOrderSequenceNumber, ProducerFenced, UnknownProducerId, InvalidProducerEpoch)
"""Errors after which an aiokafka idempotent producer cannot send again (its sender task died): replace it."""


class AIOKafkaSink(KeptSink):
    """:class:`RecordSink` over one aiokafka producer per process, replaced when it breaks.

    :meth:`keep_connected` (run as a task by the owner) starts a producer from ``factory``, retrying while Kafka
    is down, then probes the cluster periodically so readiness reflects reality. Until a producer has started,
    :meth:`send` raises :class:`QueueUnavailable` at once. An idempotent producer can be left unable to send
    after a broker restart (sequence numbers the restarted broker never stored: ``OutOfOrderSequenceNumber``
    kills aiokafka's sender); such errors, or ``reset_after`` failures in a row, make the task replace the
    producer with a new one (a new producer id, so sequences start again). The owner cancels the task and
    calls :meth:`close`.
    """

    def __init__(
        self,
        factory: Callable[[], AIOKafkaProducer],
        timeout_s: float,
        readiness_max_age_s: float,
        reset_after: int = 5,
    ) -> None:
        super().__init__(timeout_s, readiness_max_age_s, reset_after)
        self._factory = factory
        self._producer: AIOKafkaProducer | None = None

    def _connected(self) -> bool:
        return self._producer is not None

    async def _replace(self) -> None:
        old, self._producer = self._producer, None
        if old is not None:
            self.replacements += 1
            await self._discard(old)
        delay = 0.5
        while True:
            producer = self._factory()
            try:
                async with asyncio.timeout(self._timeout_s):
                    await start_client(producer.start(), producer.stop, settle_s=self._timeout_s)
            except (KafkaError, TimeoutError, OSError):
                self._last_error = time.monotonic()
                await self._discard(producer)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except BaseException:  # cancelled mid-start (the owner is closing): leave no connection open
                await self._discard(producer)
                raise
            self._producer = producer
            self._reset.clear()
            self._succeeded()
            return

    @runs_to_the_end
    async def _discard(self, producer: AIOKafkaProducer) -> None:
        """Stop a producer that failed or broke, bounded in time; its connections are closed even when its
        sender is dead and ``stop()`` cannot finish."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._timeout_s):
                await producer.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._timeout_s):
                await producer.client.close()

    @runs_to_the_end
    async def close(self) -> None:
        """Flush what is pending and stop the producer (if one is running). Blocks at most twice the send
        timeout: a producer that cannot stop in that time (a broker gone mid-flush) has its connections closed,
        and what it still held was never acknowledged, so never answered 202."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            async with asyncio.timeout(2 * self._timeout_s):
                await producer.stop()
        except TimeoutError:
            await self._discard(producer)

    async def send(self, topic: str, key: bytes, value: bytes, headers: Headers = ()) -> Delivery:
        producer = self._producer
        if producer is None:
            raise self._not_connected()
        self._pending += 1
        try:
            async with asyncio.timeout(self._timeout_s):
                fut = await producer.send(topic, value=value, key=key, headers=list(headers) or None)
            async with asyncio.timeout(self._timeout_s):
                metadata = await fut
        except (KafkaError, TimeoutError) as exc:
            self._failed(isinstance(exc, _PRODUCER_BROKEN))
            raise QueueUnavailable(type(exc).__name__) from exc
        finally:
            self._pending -= 1
        return self._confirmed(metadata.partition, metadata.offset)

    async def probe(self) -> bool:
        """Send a real metadata request now; True when the cluster answered. Blocks at most the send timeout."""
        producer = self._producer
        ok = False
        if producer is not None:
            with contextlib.suppress(KafkaError, TimeoutError, OSError):
                async with asyncio.timeout(self._timeout_s):
                    ok = bool(await producer.client.force_metadata_update())
        return self._probed(ok)
