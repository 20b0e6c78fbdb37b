"""``Expect: 100-continue`` on the upload route: the go-ahead comes only once the upload may be read.

aiohttp answers ``100 Continue`` as soon as a request is routed, before any middleware: a client that waits for it
(curl for large bodies, Go, Java and .NET HTTP clients, aiohttp's ``expect100``) then sends its whole photo even
when the overload gate, the signature check, the rate limits or the declared length will refuse it. On the upload
route :func:`defer_continue` replaces that, and the handler calls :func:`continue_body` right before it reads the
body: a refused upload gets its final answer (503 with Retry-After, 401, 429, 413, …) while its body is still on
the client. RFC 9110 §10.1.1: a server may answer with a final status instead of 100; the client then does not
send the content.
"""

from __future__ import annotations

from aiohttp import HttpVersion11, hdrs, web

from ingest.keys import CONTINUE_DEFERRED

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


async def defer_continue(request: web.Request) -> None:
    """The upload route's expect handler: answers nothing, so the middlewares and the handler decide first."""
    request[CONTINUE_DEFERRED] = True


async def continue_body(request: web.Request) -> bool:
    """Let the client send its body: write the interim ``100 Continue`` when the request (HTTP/1.1) expects it.
    Returns False for an expectation other than ``100-continue`` (the caller answers 417 unread); True otherwise,
    also without any ``Expect``, and on a route that did not defer (aiohttp answered at routing). Call once, before
    the first read of the body; blocks only to flush the line."""
    expect = request.headers.get(hdrs.EXPECT)
    if expect is None or request.version != HttpVersion11 or not request.get(CONTINUE_DEFERRED, False):
        return True
    if expect.strip().lower() != "100-continue":
        return False
    await request.writer.write(CONTINUE)
    request.writer.output_size = 0  # as aiohttp's own expect handler: the interim answer is not the response
    return True
