"""A steady stream of uploads and the accounting of what became of them, for the fault tests.

:class:`Stream` submits at a fixed rate, each submission with its own Idempotency-Key, retrying on 503/429
after Retry-After (capped) until a 202 or its deadline. :func:`audit` then checks every acknowledged
submission in the S3 server: present exactly once, with the right content (the stored card is the one the pipeline
makes of that photo). The table has one row per fault: sent, acknowledged, shed, persisted, duplicated, lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout

from intake.auth import ClientKey, signing_middleware
from intake.settings import Settings
from intake.status import StatusRecord, photo_key, photo_prefix, status_key
from intake.storage import MinioStore
from processors.photo.pipeline import normalise_photo
from tests.corpus.ktp import SceneSpec, encode, scene
from tests.support import make_registration, multipart

PHOTOS = [encode(scene(SceneSpec(seed=100 + i))) for i in range(4)]


def expected_cards(settings: Settings) -> list[str]:
    """The SHA-256 of the card the pipeline makes of each photo (it is deterministic)."""
    out = []
    for photo in PHOTOS:
        result = normalise_photo(photo, settings.photo)
        assert result.card_jpeg is not None
        out.append(hashlib.sha256(result.card_jpeg).hexdigest())
    return out


@dataclass
class Stream:
    """Submits ``rate`` uploads per second to ``base_url`` until stopped."""

    base_url: str
    rate: float
    key: ClientKey
    """Signs every attempt, as the registration site's backend would."""
    deadline_s: float = 90.0
    sent: int = 0
    shed: int = 0
    shed_without_retry_after: int = 0
    slowest_answer_s: float = 0.0
    client_errors: int = 0
    acked: dict[str, int] = field(default_factory=dict)
    """submission id -> index of the photo it carried"""
    given_up: int = 0
    answers: list[tuple[float, float, int, str]] = field(default_factory=list)
    """(sent at, answered at, HTTP status, error code or "") of every answer, on the monotonic clock"""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def _submit(self, session: ClientSession, n: int) -> None:
        key = f"fault-{uuid.uuid4()}"
        reg = make_registration()
        index = n % len(PHOTOS)
        give_up = time.monotonic() + self.deadline_s
        while time.monotonic() < give_up:
            self.sent += 1
            started = time.monotonic()
            try:
                async with session.post(
                    f"{self.base_url}/v1/registrations",
                    data=multipart(reg, PHOTOS[index]),
                    headers={"Idempotency-Key": key},
                ) as resp:
                    body: dict[str, Any] = await resp.json()
                    status, retry_after = resp.status, resp.headers.get("Retry-After")
            except (TimeoutError, OSError):
                self.client_errors += 1
                await asyncio.sleep(1)
                continue
            self.slowest_answer_s = max(self.slowest_answer_s, time.monotonic() - started)
            code = str(body.get("error", {}).get("code", "")) if status != 202 else ""
            self.answers.append((started, time.monotonic(), status, code))
            if status == 202:
                self.acked[body["submission_id"]] = index
                return
            if status in (429, 503):
                self.shed += 1
                if retry_after is None:
                    self.shed_without_retry_after += 1
                await asyncio.sleep(min(float(retry_after or 1), 2.0))
                continue
            raise AssertionError(f"unexpected answer {status}: {body}")
        self.given_up += 1

    async def during(self, fault: Callable[[], Awaitable[None]], before_s: float, after_s: float) -> None:
        """Submit for ``before_s``, run ``fault``, submit ``after_s`` more, then wait for the submissions under way."""
        stop = asyncio.Event()
        runner = asyncio.create_task(self.run(stop))
        await asyncio.sleep(before_s)
        await fault()
        await asyncio.sleep(after_s)
        stop.set()
        await runner

    async def burst(self, count: int) -> None:
        """Start ``count`` submissions at once (every one is under way before any is answered: a load past any
        small in-flight bound, whatever the machine's speed), then wait for them all."""
        signer = signing_middleware(self.key)
        async with ClientSession(timeout=ClientTimeout(total=30), middlewares=(signer,)) as session:
            self._tasks.extend(asyncio.create_task(self._submit(session, n)) for n in range(count))
            await asyncio.gather(*self._tasks)

    async def run(self, stop: asyncio.Event) -> None:
        """Submit until ``stop`` is set, then wait for the submissions under way."""
        signer = signing_middleware(self.key)
        async with ClientSession(timeout=ClientTimeout(total=30), middlewares=(signer,)) as session:
            n = 0
            while not stop.is_set():
                self._tasks.append(asyncio.create_task(self._submit(session, n)))
                n += 1
                with contextlib.suppress(TimeoutError):  # the pace of arrivals
                    await asyncio.wait_for(stop.wait(), 1 / self.rate)
            await asyncio.gather(*self._tasks)


@dataclass
class Audit:
    fault: str
    sent: int
    acknowledged: int
    shed: int
    persisted: int
    duplicated: int
    lost: int

    def row(self) -> str:
        return (
            f"| {self.fault:<34} | {self.sent:>5} | {self.acknowledged:>5} | {self.shed:>5} | {self.persisted:>9} "
            f"| {self.duplicated:>10} | {self.lost:>4} |"
        )


HEADER = (
    "| fault (S3 server)                  |  sent | acked |  shed | persisted | duplicated | lost |\n"
    "| ---------------------------------- | ----- | ----- | ----- | --------- | ---------- | ---- |"
)


async def audit(
    fault: str, stream: Stream, store: MinioStore, settings: Settings, cards: list[str], timeout_s: float = 150
) -> Audit:
    """Wait until every acknowledged submission is persisted (or the timeout), then count."""
    pending = set(stream.acked)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for sid in list(pending):
            if await store.get(settings.s3.bucket_status, status_key(sid)) is not None:
                pending.discard(sid)
        if pending:
            await asyncio.sleep(1)
    persisted = duplicated = 0
    for sid, index in stream.acked.items():
        stored = await store.get(settings.s3.bucket_status, status_key(sid))
        if stored is None:
            continue
        record = StatusRecord.from_json(stored.data)
        keys = await store.list_keys(settings.s3.bucket_photos, photo_prefix(sid))
        card = await store.get(settings.s3.bucket_photos, photo_key(sid, "card"))
        right = (
            record.state == "eligible"
            and card is not None
            and hashlib.sha256(card.data).hexdigest() == cards[index] == record.facts.get("sha256")
        )
        if keys != [photo_key(sid, "card"), photo_key(sid, "frame")]:
            duplicated += 1
        elif right:
            persisted += 1
    return Audit(
        fault,
        stream.sent,
        len(stream.acked),
        stream.shed,
        persisted,
        duplicated,
        lost=len(stream.acked) - persisted - duplicated,
    )
