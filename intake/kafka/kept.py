"""The keeper both sinks share: start a producer, probe the cluster, replace a broken producer; readiness and
the count of records awaiting acknowledgement."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, ParamSpec, TypeVar

from intake.kafka.sink import Delivery, QueueUnavailable

P = ParamSpec("P")
T = TypeVar("T")


def runs_to_the_end(teardown: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Make a producer's teardown (bounded in time) finish even when its caller is cancelled meanwhile: the
    cancellation waits for the teardown's end and is raised after it. Without this, a keeper cancelled while it
    discards a producer (the owner shutting down during a failed start or a replacement) stops half-way: the
    producer's threads, poller or connections stay running. A second cancellation waits too; the teardown's own
    exception is raised when nobody cancelled."""

    @functools.wraps(teardown)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        task = asyncio.ensure_future(teardown(*args, **kwargs))
        cancelled = False
        while not task.done():
            try:
                await asyncio.wait((task,))  # unlike awaiting it, a cancelled wait leaves the task running
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            if not task.cancelled():
                task.exception()  # retrieved: the cancellation is what the caller sees
            raise asyncio.CancelledError
        return task.result()

    return wrapper


class KeptSink:
    """What both sinks share: the keeper loop (start a producer, probe, replace a broken one), readiness and the
    count of records awaiting acknowledgement. Subclasses provide ``_replace`` and ``probe``."""

    def __init__(self, timeout_s: float, readiness_max_age_s: float, reset_after: int) -> None:
        self._timeout_s = timeout_s
        self._readiness_max_age_s = readiness_max_age_s
        self._reset_after = reset_after
        self._last_ok = 0.0
        self._last_error = 0.0
        self._failures = 0
        self._pending = 0
        self._reset = asyncio.Event()
        self._up = asyncio.Event()  # set once a producer has connected (later outages show as send errors)
        self.replacements = 0

    def _connected(self) -> bool:
        raise NotImplementedError

    async def _replace(self) -> None:
        raise NotImplementedError

    async def probe(self) -> bool:
        raise NotImplementedError

    async def keep_connected(self, probe_interval_s: float) -> None:
        """Keep a working producer: start one, probe every ``probe_interval_s``, replace a broken one. Runs until
        cancelled."""
        while True:
            if not self._connected() or self._reset.is_set():
                await self._replace()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(probe_interval_s):
                    await self._reset.wait()
            if not self._reset.is_set():
                await self.probe()

    def _failed(self, broken: bool) -> None:
        """A send failed; ``broken`` (or ``reset_after`` failures in a row) makes the keeper replace the producer."""
        self._last_error = time.monotonic()
        self._failures += 1
        if broken or self._failures >= self._reset_after:
            self._reset.set()

    def _not_connected(self) -> QueueUnavailable:
        """The refusal of a send while no producer is connected (counted as contact failed, for readiness)."""
        self._last_error = time.monotonic()
        return QueueUnavailable("producer not connected")

    @contextlib.contextmanager
    def _sending(self) -> Iterator[None]:
        """Around one record's send by a librdkafka sink: counts it as pending, and turns its failure
        (:class:`DeliveryFailed`, or ``TimeoutError`` when no report came in time) into :class:`QueueUnavailable`,
        counted by the keeper (a fatal one replaces the producer)."""
        self._pending += 1
        try:
            yield
        except DeliveryFailed as exc:
            self._failed(exc.fatal)
            raise QueueUnavailable(exc.name) from exc
        except TimeoutError as exc:
            self._failed(False)
            raise QueueUnavailable("TimeoutError") from exc
        finally:
            self._pending -= 1

    def _succeeded(self) -> None:
        self._failures = 0
        self._last_ok = time.monotonic()
        self._up.set()

    def _confirmed(self, partition: int, offset: int | None) -> Delivery:
        """The acknowledgement of a record the producer reported appended at ``offset`` of ``partition``; raises
        :class:`QueueUnavailable` when it reported success without an offset. The producer works either way.

        Such a success is the producer's inference, not the broker's word. librdkafka reports it when a later
        batch of the same partition succeeded while this one's request had failed or timed out: it then takes
        this one as written too ("implicit ack", ``rd_kafka_dr_implicit_ack``), and the offset stays
        ``RD_KAFKA_OFFSET_INVALID``. That holds only while the broker checks the producer's sequence numbers; a
        broker without the producer's state (after a restart, a partition the producer never wrote) accepts the
        later batch after a gap (KAFKA-15591, fixed in Kafka 4.5), and the record is not in the log. aiokafka
        reports offset -1 for ``DUPLICATE_SEQUENCE_NUMBER``. In CI of 1dac081 (``test_zy_faults.py::
        test_b_broker_restart``, the broker stopped and restarted) six uploads were answered 202 that way, and
        exactly six acknowledged uploads never reached the consumers. Answered 503 instead, the client resends
        with the same Idempotency-Key: at worst the record is in the log twice, which the consumers already take as
        one submission."""
        self._succeeded()
        if offset is None or offset < 0:
            raise QueueUnavailable("delivered without an offset: not confirmed")
        return Delivery(partition, offset)

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` until a producer has connected once; True if it has. For batch commands
        that send at once (the API never waits: until then it answers 503)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._up.wait()
        return self._up.is_set()

    def _probed(self, ok: bool) -> bool:
        if ok:
            self._last_ok = time.monotonic()
        else:
            self._last_error = time.monotonic()
        return ok

    def pending(self) -> int:
        return self._pending

    def ready(self) -> bool:
        """True when the last contact with the cluster (an acknowledgement or a :meth:`probe`) succeeded and is
        younger than the readiness age. Never blocks."""
        last_ok = self._last_ok
        return last_ok > self._last_error and time.monotonic() - last_ok < self._readiness_max_age_s


class DeliveryFailed(Exception):
    """librdkafka refused a record or reported it failed: ``name`` is its error's name, ``fatal`` whether the
    producer can never send again."""

    def __init__(self, name: str, fatal: bool) -> None:
        super().__init__(name)
        self.name = name
        self.fatal = fatal
