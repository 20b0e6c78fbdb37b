"""librdkafka's producer through its public C API (``ctypes``): delivery reports served on the caller's event loop
and the value never copied.

``confluent-kafka`` copies every value into librdkafka and serves delivery reports on a thread that blocks in
``poll`` and then wakes the event loop: two wake-ups and a 500 KB copy per record. This module calls the same
library (the copy bundled in the ``confluent-kafka`` wheel, or the system's ``librdkafka.so.1``) directly:

* the value is handed over without ``RD_KAFKA_MSG_F_COPY``: librdkafka reads the caller's ``bytes`` until the
  record's delivery report; :class:`NativeProducer` holds a reference to it until then, or until :meth:`close`
  returned (``bytes`` never change, so what is sent is what was given);
* delivery reports and errors are events on librdkafka's main queue, which writes a byte to a pipe when the queue
  becomes non-empty (``rd_kafka_queue_io_event_enable``); the event loop watches the pipe and takes the events
  (:meth:`NativeProducer.take_events`), so no thread of ours blocks and wakes for them.

Only the stable public ABI of ``rdkafka.h`` is used (functions since librdkafka 1.6, the ``rd_kafka_message_t`` and
``rd_kafka_vu_t`` layouts); never a private structure of another binding. Variadic ``rd_kafka_producev`` is not
called (a variadic call through ``ctypes`` is undefined on some ABIs): :meth:`NativeProducer.produce` uses
``rd_kafka_produceva``, which takes an array.

Threads: :meth:`~NativeProducer.produce` and :meth:`~NativeProducer.take_events` are called by one thread (the
event loop's); :meth:`~NativeProducer.flush` and :meth:`~NativeProducer.metadata` block and belong in a worker
thread; :meth:`~NativeProducer.close` blocks until librdkafka's threads ended (a worker thread too).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

_P = ctypes.c_void_p

MIN_VERSION = 0x010600FF
"""The oldest librdkafka with every call used here (``rd_kafka_produceva``: 1.6.0)."""

_PRODUCER = 0  # rd_kafka_type_t RD_KAFKA_PRODUCER
_EVENT_DR = 0x1
_EVENT_ERROR = 0x8
_VTYPE_TOPIC, _VTYPE_VALUE, _VTYPE_KEY, _VTYPE_OPAQUE, _VTYPE_HEADER = 1, 4, 5, 6, 9
_ERRSTR = 512

ERR_QUEUE_FULL = -184
"""``RD_KAFKA_RESP_ERR__QUEUE_FULL``: librdkafka's queue holds ``queue.buffering.max.*`` already."""
ERR_FATAL = -150
"""``RD_KAFKA_RESP_ERR__FATAL``: the idempotent producer's state is lost; this producer can never send again."""


class LibrdkafkaMissing(RuntimeError):
    """No librdkafka library was found, or it is older than :data:`MIN_VERSION`."""


class ProducerConfigError(ValueError):
    """librdkafka refused a configuration property or the producer's creation (its message says which)."""


class _Message(ctypes.Structure):
    """``rd_kafka_message_t`` (rdkafka.h): a delivery report's record."""

    _fields_ = (
        ("err", ctypes.c_int),
        ("rkt", _P),
        ("partition", ctypes.c_int32),
        ("payload", _P),
        ("len", ctypes.c_size_t),
        ("key", _P),
        ("key_len", ctypes.c_size_t),
        ("offset", ctypes.c_int64),
        ("_private", _P),
    )


class _Mem(ctypes.Structure):
    _fields_ = (("ptr", ctypes.c_char_p), ("size", ctypes.c_size_t))


class _Header(ctypes.Structure):
    _fields_ = (("name", ctypes.c_char_p), ("val", ctypes.c_char_p), ("size", ctypes.c_ssize_t))


class _Union(ctypes.Union):
    _fields_ = (
        ("cstr", ctypes.c_char_p),
        ("mem", _Mem),
        ("header", _Header),
        ("ptr", _P),
        ("_pad", ctypes.c_char * 64),
    )


class _Vu(ctypes.Structure):
    """``rd_kafka_vu_t``: one argument of ``rd_kafka_produceva`` (a tag and a 64-byte union: 72 bytes)."""

    _fields_ = (("vtype", ctypes.c_int), ("u", _Union))


class Report(NamedTuple):
    """A record's delivery report: ``err`` 0 and its partition and offset (``offset`` < 0: librdkafka did not learn
    it), or librdkafka's error code and name."""

    opaque: int
    err: int
    name: str
    partition: int
    offset: int


class Failure(NamedTuple):
    """An error event of the producer (a broker down, the idempotent state lost when ``fatal``)."""

    err: int
    name: str
    reason: str
    fatal: bool


def _library_candidates() -> Iterable[str]:
    """The library the ``confluent-kafka`` wheel bundles (the version the service is tested with), then the
    system's."""
    try:
        import confluent_kafka  # noqa: PLC0415 - only processes that use this producer pay for the import
    except ImportError:  # pragma: no cover - confluent-kafka is a dependency
        pass
    else:
        libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
        yield from sorted(str(p) for p in libs.glob("librdkafka*.so*"))
    found = ctypes.util.find_library("rdkafka")
    if found:
        yield found


@functools.cache
def load() -> ctypes.CDLL:
    """The librdkafka library with the prototypes this module calls; raises :class:`LibrdkafkaMissing`."""
    for path in _library_candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.rd_kafka_version.restype = ctypes.c_int
        if lib.rd_kafka_version() < MIN_VERSION:
            continue
        _declare(lib)
        return lib
    raise LibrdkafkaMissing("no librdkafka >= 1.6 found (the confluent-kafka wheel's, or librdkafka.so.1)")


def _declare(lib: ctypes.CDLL) -> None:
    int_, size = ctypes.c_int, ctypes.c_size_t
    protos: dict[str, tuple[list[type], type | None]] = {
        "rd_kafka_conf_new": ([], _P),
        "rd_kafka_conf_set": ([_P, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, size], int_),
        "rd_kafka_conf_set_events": ([_P, int_], None),
        "rd_kafka_conf_destroy": ([_P], None),
        "rd_kafka_new": ([int_, _P, ctypes.c_char_p, size], _P),
        "rd_kafka_queue_get_main": ([_P], _P),
        "rd_kafka_queue_io_event_enable": ([_P, int_, ctypes.c_char_p, size], None),
        "rd_kafka_queue_poll": ([_P, int_], _P),
        "rd_kafka_queue_destroy": ([_P], None),
        "rd_kafka_event_type": ([_P], int_),
        "rd_kafka_event_message_next": ([_P], _P),
        "rd_kafka_event_error": ([_P], int_),
        "rd_kafka_event_error_string": ([_P], ctypes.c_char_p),
        "rd_kafka_event_error_is_fatal": ([_P], int_),
        "rd_kafka_event_destroy": ([_P], None),
        "rd_kafka_produceva": ([_P, _P, size], _P),
        "rd_kafka_error_code": ([_P], int_),
        "rd_kafka_error_destroy": ([_P], None),
        "rd_kafka_err2name": ([int_], ctypes.c_char_p),
        "rd_kafka_flush": ([_P, int_], int_),
        "rd_kafka_metadata": ([_P, int_, _P, ctypes.POINTER(_P), int_], int_),
        "rd_kafka_metadata_destroy": ([_P], None),
        "rd_kafka_destroy": ([_P], None),
    }
    for name, (argtypes, restype) in protos.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, restype


def err_name(lib: ctypes.CDLL, err: int) -> str:
    """librdkafka's name of an error code (``_MSG_TIMED_OUT``, ``NOT_ENOUGH_REPLICAS``…)."""
    name: bytes | None = lib.rd_kafka_err2name(err)
    return name.decode("ascii", "replace") if name else str(err)


def _conf_value(value: object) -> bytes:
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return str(value).encode()


class NativeProducer:
    """One librdkafka producer (``rd_kafka_t``) whose delivery reports and errors are taken on the caller's loop.

    ``conf`` is librdkafka's properties (``intake.kafka.config.confluent_config`` without ``error_cb``); raises
    :class:`ProducerConfigError` for a property librdkafka refuses. The producer connects in the background.
    Whoever builds it calls :meth:`close` (once).
    """

    def __init__(self, conf: Mapping[str, object], lib: ctypes.CDLL | None = None) -> None:
        self._lib = lib = lib or load()
        errstr = ctypes.create_string_buffer(_ERRSTR)
        handle = lib.rd_kafka_conf_new()
        for name, value in conf.items():
            if lib.rd_kafka_conf_set(handle, name.encode(), _conf_value(value), errstr, _ERRSTR) != 0:
                lib.rd_kafka_conf_destroy(handle)
                raise ProducerConfigError(errstr.value.decode("utf-8", "replace"))
        lib.rd_kafka_conf_set_events(handle, _EVENT_DR | _EVENT_ERROR)
        rk = lib.rd_kafka_new(_PRODUCER, handle, errstr, _ERRSTR)
        if not rk:  # the configuration is still ours only when the creation failed
            lib.rd_kafka_conf_destroy(handle)
            raise ProducerConfigError(errstr.value.decode("utf-8", "replace"))
        self._rk: int | None = rk
        self._queue: int | None = lib.rd_kafka_queue_get_main(rk)
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        lib.rd_kafka_queue_io_event_enable(self._queue, self._write_fd, b"1", 1)
        # librdkafka writes when an event arrives on an empty queue; events queued since rd_kafka_new (the first
        # connection's errors) would otherwise wait, unsignalled, behind a queue that never empties.
        os.write(self._write_fd, b"1")
        self._held: dict[int, tuple[bytes, bytes]] = {}
        self._ids = itertools.count(1)

    def fileno(self) -> int:
        """The pipe's end that becomes readable when events wait (for ``loop.add_reader``)."""
        return self._read_fd

    def held(self) -> int:
        """Records librdkafka may still read (no delivery report taken yet)."""
        return len(self._held)

    def produce(self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> int:
        """Queue one record; return its id (its :class:`Report` carries it), or raise :class:`QueueFull` /
        :class:`ProduceRefused` when librdkafka did not queue it. Never blocks; ``value`` is not copied."""
        rk = self._rk
        if rk is None:
            raise ProduceRefused(-172, "_DESTROY")  # RD_KAFKA_RESP_ERR__DESTROY
        opaque = next(self._ids)
        vus = (_Vu * (4 + len(headers)))()
        vus[0].vtype, vus[0].u.cstr = _VTYPE_TOPIC, topic.encode()
        vus[1].vtype, vus[1].u.mem.ptr, vus[1].u.mem.size = _VTYPE_VALUE, value, len(value)
        vus[2].vtype, vus[2].u.mem.ptr, vus[2].u.mem.size = _VTYPE_KEY, key, len(key)
        vus[3].vtype, vus[3].u.ptr = _VTYPE_OPAQUE, opaque
        for vu, (name, header) in zip(vus[4:], headers, strict=True):  # librdkafka copies headers
            vu.vtype = _VTYPE_HEADER
            vu.u.header.name, vu.u.header.val, vu.u.header.size = name.encode(), header, len(header)
        self._held[opaque] = (value, key)  # before the call: librdkafka may report from its threads at once
        error = self._lib.rd_kafka_produceva(rk, vus, len(vus))
        if error:
            del self._held[opaque]
            code = self._lib.rd_kafka_error_code(error)
            self._lib.rd_kafka_error_destroy(error)
            name = err_name(self._lib, code)
            raise QueueFull(code, name) if code == ERR_QUEUE_FULL else ProduceRefused(code, name)
        return opaque

    def take_events(self) -> list[Report | Failure]:
        """Every event waiting now (never blocks): delivery reports, whose records librdkafka no longer reads, and
        error events. Called when :meth:`fileno` is readable (and may be called at any other time)."""
        lib, queue = self._lib, self._queue
        taken: list[Report | Failure] = []
        if queue is None:  # closed
            return taken
        with contextlib.suppress(BlockingIOError):
            os.read(self._read_fd, 4096)
        while event := lib.rd_kafka_queue_poll(queue, 0):
            try:
                kind = lib.rd_kafka_event_type(event)
                if kind == _EVENT_DR:
                    while address := lib.rd_kafka_event_message_next(event):
                        msg = _Message.from_address(address)
                        opaque = msg._private or 0
                        self._held.pop(opaque, None)
                        name = err_name(lib, msg.err) if msg.err else ""
                        taken.append(Report(opaque, msg.err, name, msg.partition, msg.offset))
                elif kind == _EVENT_ERROR:
                    code = lib.rd_kafka_event_error(event)
                    reason: bytes | None = lib.rd_kafka_event_error_string(event)
                    taken.append(
                        Failure(
                            code,
                            err_name(lib, code),
                            reason.decode("utf-8", "replace") if reason else "",
                            bool(lib.rd_kafka_event_error_is_fatal(event)),
                        )
                    )
            finally:
                lib.rd_kafka_event_destroy(event)
        return taken

    def flush(self, timeout_s: float) -> None:
        """Block until every queued record has its report queued, at most ``timeout_s``. The reports themselves
        are taken by :meth:`take_events` (meanwhile, on the loop, or after); :meth:`held` then counts the records
        without one. (librdkafka counts events waiting to be taken as outstanding too: while nobody takes them,
        the wait lasts the whole ``timeout_s``.)"""
        if self._rk is not None:
            self._lib.rd_kafka_flush(self._rk, max(0, int(timeout_s * 1000)))

    def metadata(self, timeout_s: float) -> bool:
        """A metadata request to the cluster (blocks at most ``timeout_s``); True when a broker answered."""
        if self._rk is None:
            return False
        out = _P()
        err = self._lib.rd_kafka_metadata(self._rk, 1, None, ctypes.byref(out), max(1, int(timeout_s * 1000)))
        if err == 0 and out.value:
            self._lib.rd_kafka_metadata_destroy(out)
            return True
        return False

    def close(self) -> None:
        """Destroy the producer: records still queued are dropped unacknowledged (flush first). Blocks until
        librdkafka's threads ended; afterwards no record is read any more, and the held values are released.
        The caller stops watching :meth:`fileno` first. Safe to call twice."""
        rk, queue, self._rk, self._queue = self._rk, self._queue, None, None
        if rk is None:
            return
        if queue is not None:
            self._lib.rd_kafka_queue_destroy(queue)  # every queue handle goes before rd_kafka_destroy
        self._lib.rd_kafka_destroy(rk)
        self._held.clear()
        os.close(self._read_fd)
        os.close(self._write_fd)


class ProduceRefused(Exception):
    """librdkafka did not queue the record (an unknown topic, a record too large, a producer being destroyed…)."""

    def __init__(self, code: int, name: str) -> None:
        super().__init__(name)
        self.code, self.name = code, name


class QueueFull(ProduceRefused):
    """librdkafka's queue is full: refused at once, nothing was queued."""
