"""How much the API reads from a connection at a time: little until an upload is admitted, then in large reads.

asyncio reads up to 256 KiB per ``recv`` from every readable connection. A client posting a photo sends the head
and the body at once, so the first read of a new connection copies up to 256 KiB of body out of the kernel before
the head is even parsed; when that upload is then refused (503 ``overloaded``, the connection closed unread) the
copy was for nothing, and at a wave's opening hundreds of such reads run back to back on the event loop while
the refusals wait behind them. Measured (one API process refusing every upload of 500 KB, open loop 150/s, same
machine, alternating): 0.63-0.68 ms CPU per refusal with 256 KiB reads, 0.48-0.50 ms with 16 KiB reads.

So every connection starts with reads of at most ``INTAKE_HTTP_FIRST_READ_BYTES`` (enough for any request head,
whose limit is ``INTAKE_MAX_HEADER_BYTES`` per line), and the admission gate widens them to
``INTAKE_HTTP_READ_BYTES`` once it admits an upload (:func:`widen_reads`), so an admitted body is read in as few
reads as before. Status reads are small; they never need more.

:class:`FirstReads` wraps the protocol of each connection (aiohttp's request handler) and sets the transport's read
size when the connection is made; every callback is forwarded unchanged. Contract: nothing here blocks or raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def set_read_size(transport: Any, size: int) -> bool:
    """Make ``transport`` read at most ``size`` bytes per ``recv`` (asyncio's selector transports read
    ``transport.max_size``); False for a transport without that knob (another event loop), left as it is."""
    if transport is None or not isinstance(getattr(transport, "max_size", None), int):
        return False
    transport.max_size = size
    return True


def widen_reads(transport: Any, size: int) -> bool:
    """After admission: read the rest of the request in reads of ``size`` bytes (see :func:`set_read_size`)."""
    return set_read_size(transport, size)


class FirstReads(asyncio.Protocol):
    """A connection's protocol (``inner``) whose transport reads at most ``first_read_bytes`` at a time from the
    start. Every protocol callback is forwarded to ``inner``."""

    def __init__(self, inner: asyncio.Protocol, first_read_bytes: int) -> None:
        self.inner = inner
        self.first_read_bytes = first_read_bytes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        set_read_size(transport, self.first_read_bytes)
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


def first_reads(factory: Callable[[], asyncio.Protocol], first_read_bytes: int) -> Callable[[], asyncio.Protocol]:
    """A protocol factory for ``loop.create_server``: ``factory``'s protocols wrapped in :class:`FirstReads`."""

    def make() -> asyncio.Protocol:
        return FirstReads(factory(), first_read_bytes)

    return make
