"""The demo page and its reference client (ingest/static) in real Chromium, against the real API, Kafka and MinIO.

Each test fills the form as an applicant would, so these also exercise the client's shrinking, retrying,
polling and message rendering end to end.
"""

from __future__ import annotations

import functools
import json
import re
import time
from typing import Any

import pytest
from playwright.async_api import FilePayload, Page, Request, Route, expect

from processors.queue import Place, place_messages
from processors.reasons import reason
from processors.registration import field_error
from tests.browser.conftest import REPORTS, DemoServer
from tests.corpus.ktp import SceneSpec, encode, scene
from tests.integration.conftest import Consumers
from tests.support import make_registration

pytestmark = pytest.mark.integration

ACCEPTED_STATES = ("processed", "eligible")
"""Non-rejected states the consumer writes (``processed`` today; ``eligible`` once screening lands)."""
CLIENT_NETWORK_EN = "Could not reach the server; check your internet connection and try again."
"""The client's own message for a network error (ingest/static/intake-client.js, CLIENT_MESSAGES)."""


@functools.cache
def big_photo() -> bytes:
    """A ~3.5 MB, 4000 x 3000 camera-like JPEG, stored rotated with EXIF orientation 6 (as phones do)."""
    return encode(scene(SceneSpec(width=4000, height=3000, seed=11)), quality=97, orientation=6)


@functools.cache
def blurry_photo() -> bytes:
    return encode(scene(SceneSpec(seed=4, blur_sigma=9.0)))


async def fill_form(page: Page, server: DemoServer, photo: bytes, **overrides: Any) -> None:
    """Open the page and fill every field with a valid synthetic applicant, then choose the photo."""
    await page.goto(server.url("/demo/"))
    await expect(page.locator("body")).to_have_attribute("data-ready", "true")
    reg = {**make_registration(wave=server.settings.wave.number), **overrides}
    for name in ("full_name", "email", "nik", "birth_date", "ktp_address", "domicile_address", "phone"):
        await page.fill(f"#{name}", str(reg[name]))
    await page.select_option("#education", str(reg["education"]).lower())
    await page.select_option("#employment_status", str(reg["employment_status"]))
    await page.fill("#wave", str(reg["wave"]))
    payload: FilePayload = {"name": "ktp.jpg", "mimeType": "image/jpeg", "buffer": photo}
    await page.set_input_files("#ktp_photo", files=[payload])
    await expect(page.locator("#photo-info")).to_have_attribute("data-bytes", re.compile(r"^\d+$"))


async def test_large_photo_is_shrunk_in_the_browser_and_accepted(
    page: Page, demo_server: DemoServer, consumers: Consumers
) -> None:
    photo = big_photo()
    assert len(photo) >= 3 * 1024 * 1024
    consumers.start()
    await fill_form(page, demo_server, photo)
    info = page.locator("#photo-info")
    # EXIF orientation applied: the stored 3000 x 4000 pixels are shown upright, then scaled to 1600 px.
    await expect(info).to_contain_text("4000 × 3000 px")
    await expect(info).to_contain_text("1600 × 1200 px")
    shrunk = int(await info.get_attribute("data-bytes") or 0)
    assert int(await info.get_attribute("data-original-bytes") or 0) == len(photo)
    assert 0 < shrunk < len(photo) // 4

    await page.click("#submit")
    panel = page.locator("#status-panel")
    await expect(panel).to_have_attribute(
        "data-state", re.compile("^(" + "|".join(ACCEPTED_STATES) + ")$"), timeout=45_000
    )
    await expect(page.locator("#status-reason")).to_have_text("")
    await expect(page.locator("#status-id")).to_contain_text("Nomor pengajuan")

    posts = demo_server.posts()
    assert [p.status for p in posts] == [202]
    body = posts[0].content_length
    assert body is not None and body < len(photo) // 4, (body, len(photo))
    assert body < shrunk + 4096  # the shrunk JPEG plus the registration and multipart framing

    REPORTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(REPORTS / "demo.png"), full_page=True)


async def test_place_in_the_queue_is_shown_until_processed(
    page: Page, demo_server: DemoServer, consumers: Consumers
) -> None:
    """Nobody consumes yet: the page shows the place in the queue (from the receipt and GET /v1/queue, or the
    personal ``received`` status), in both languages; once a consumer runs, the final state replaces it."""
    await fill_form(page, demo_server, encode(scene(SceneSpec(seed=3))))
    await page.click("#submit")
    queue = page.locator("#status-queue")
    await expect(queue).to_have_text(re.compile(r"^Anda di antrean ke-\d+"), timeout=20_000)
    assert int(await queue.get_attribute("data-position") or 0) >= 1
    await page.click("#lang-toggle")
    await expect(queue).to_have_text(re.compile(r"^You are number \d+ in the queue"))
    assert any(s.path == "/v1/queue" for s in demo_server.seen)  # the public watermark was polled
    consumers.start()
    panel = page.locator("#status-panel")
    await expect(panel).to_have_attribute(
        "data-state", re.compile("^(" + "|".join(ACCEPTED_STATES) + ")$"), timeout=60_000
    )
    await expect(queue).to_have_text("")


async def test_503_is_retried_after_retry_after_with_the_same_key(page: Page, demo_server: DemoServer) -> None:
    attempts: list[tuple[float, str]] = []
    signatures: list[str] = []
    refused = reason("overloaded")
    error = {"code": refused.code, "message": refused.message_id}
    error |= {"message_id": refused.message_id, "message_en": refused.message_en}

    async def first_refused(route: Route, request: Request) -> None:
        attempts.append((time.monotonic(), await request.header_value("idempotency-key") or ""))
        signatures.append(await request.header_value("authorization") or "")
        if len(attempts) == 1:
            await route.fulfill(
                status=503,
                headers={"Retry-After": "1", "Cache-Control": "no-store"},
                content_type="application/json",
                body=json.dumps({"error": error}),
            )
        else:
            await route.continue_()

    await fill_form(page, demo_server, encode(scene(SceneSpec(seed=12))))
    await page.route("**/v1/registrations", first_refused)
    await page.click("#submit")
    await expect(page.locator("#status-stage")).to_contain_text("Server sibuk")
    await expect(page.locator("#status-id")).to_contain_text("Nomor pengajuan", timeout=15_000)

    assert len(attempts) == 2, attempts
    (t1, key1), (t2, key2) = attempts
    assert key1 and key1 == key2
    assert t2 - t1 >= 1.0
    assert all(s.startswith("INTAKE-HMAC-SHA256 ") for s in signatures)
    assert signatures[0] != signatures[1]  # each attempt is signed anew (fresh nonce), over the same key
    posts = demo_server.posts()
    assert [(p.status, p.idempotency_key) for p in posts] == [(202, key1)]


async def test_rejected_photo_shows_its_reason(page: Page, demo_server: DemoServer, consumers: Consumers) -> None:
    consumers.start()
    await fill_form(page, demo_server, blurry_photo())
    await page.click("#submit")
    await expect(page.locator("#status-panel")).to_have_attribute("data-state", "rejected", timeout=45_000)
    blurry = reason("blurry")
    status_reason = page.locator("#status-reason")
    await expect(status_reason).to_have_text(blurry.message_id)
    await expect(status_reason).to_have_attribute("data-code", "blurry")
    await expect(page.locator("#status-stage")).to_have_text("Pemeriksaan selesai.")
    await page.click("#lang-toggle")
    await expect(status_reason).to_have_text(blurry.message_en)
    await expect(page.locator("html")).to_have_attribute("lang", "en")


async def test_field_error_is_shown_next_to_its_field(page: Page, demo_server: DemoServer) -> None:
    await fill_form(page, demo_server, encode(scene(SceneSpec(seed=13))), email="siti@@example")
    await page.click("#submit")
    expected = field_error("email", "email_invalid")
    email_error = page.locator("#email + .field-error")
    await expect(email_error).to_have_text(expected.message_id)
    await expect(page.locator("#email")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#email")).to_be_focused()
    await expect(page.locator("#error-full_name")).to_have_text("")
    await expect(page.locator("#status-reason")).to_have_text(reason("validation_failed").message_id)
    assert [p.status for p in demo_server.posts()] == [422]
    await page.click("#lang-toggle")
    await expect(email_error).to_have_text(expected.message_en)


async def test_client_helpers(page: Page, demo_server: DemoServer) -> None:
    await page.goto(demo_server.url("/demo/"))
    got = await page.evaluate(
        """async () => {
        const m = await import("./intake-client.js");
        const d = m.DEFAULTS;
        return {
            retryAfter: [m.parseRetryAfter("3"), m.parseRetryAfter(null), m.parseRetryAfter("soon")],
            retryDelay: [m.retryDelay(1000, 1, d, () => 0), m.retryDelay(1000, 1, d, () => 1)],
            backoff: [1, 2, 3, 10].map((a) => m.retryDelay(null, a, d, () => 1)),
            messages: [
                m.messageFor({ message_id: "pesan", message_en: "message" }),
                m.messageFor({ message_id: "pesan", message_en: "message" }, "en"),
                m.messageFor({ code: "x", message_id: "", message_en: "only english" }),
                m.messageFor("network_error", "en"),
            ],
            fields: m.fieldErrors({
                code: "validation_failed", message_id: "", message_en: "",
                fields: [{ field: "email", code: "email_invalid", message_id: "e", message_en: "E" }],
            }),
            photo: Object.keys(m.fieldErrors({ code: "photo_too_large", message_id: "p", message_en: "P" })),
            final: ["received", "processing", "processed", "eligible", "rejected"].map(m.isFinalState),
            key: m.newIdempotencyKey(),
            place: m.queuePlace(
                { partition: 1, offset: 1300 },
                { partitions: [{ partition: 1, committed: 66, end: 2000, drain_per_second: 2 }] },
            ),
            passed: m.queuePlace({ partition: 1, offset: 65 }, { partitions: [{ partition: 1, committed: 66 }] }),
            noRate: m.queueMessages(3, null),
        };
    }"""
    )
    assert got["retryAfter"] == [3000, None, None]
    assert got["retryDelay"] == [1000, 1750]  # Retry-After plus up to half of it plus 250 ms
    assert got["backoff"] == [1000, 2000, 4000, 30000]
    assert got["messages"] == ["pesan", "message", "only english", CLIENT_NETWORK_EN]
    assert got["fields"]["email"]["message_id"] == "e"
    assert got["photo"] == ["ktp_photo"]
    assert got["final"] == [False, False, False, True, True]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", got["key"])
    # The same place and lines as the server's (processors.queue).
    where = Place(1, 1300, 1234, 2.0)
    assert got["place"]["ahead"] == 1234 and got["place"]["position"] == 1235
    assert got["place"]["estimated_wait_seconds"] == 617
    assert (got["place"]["message_id"], got["place"]["message_en"]) == place_messages(where)
    assert got["passed"] is None
    assert (got["noRate"]["message_id"], got["noRate"]["message_en"]) == place_messages(Place(0, 0, 2, None))


async def test_network_error_is_retried_and_status_polling_uses_etags(page: Page, demo_server: DemoServer) -> None:
    """The client alone, against scripted answers: a dropped connection, then 202; then 200, 304, final 200."""
    keys: list[str] = []
    polls: list[str | None] = []
    tokens: list[str | None] = []
    status = {"submission_id": "s1", "reason": None, "poll_after_seconds": 1}
    rejected = reason("blurry")
    final = {**status, "state": "rejected", "reason": {"code": "blurry", "message_id": rejected.message_id}}

    async def post(route: Route, request: Request) -> None:
        keys.append(await request.header_value("idempotency-key") or "")
        if len(keys) == 1:
            await route.abort("connectionreset")
            return
        accepted: dict[str, Any] = {"submission_id": "s1", "state": "received", "status_url": "/v1/submissions/s1"}
        accepted |= {"status_token": "t", "poll_after_seconds": 1}
        await route.fulfill(status=202, content_type="application/json", body=json.dumps(accepted))

    async def get(route: Route, request: Request) -> None:
        polls.append(await request.header_value("if-none-match"))
        tokens.append(await request.header_value("authorization"))
        if len(polls) == 1:
            body = json.dumps({**status, "state": "received"})
            await route.fulfill(status=200, headers={"ETag": '"a"', "Retry-After": "1"}, body=body)
        elif len(polls) == 2:
            await route.fulfill(status=304, headers={"ETag": '"a"', "Retry-After": "1"})
        else:
            await route.fulfill(status=200, headers={"ETag": '"b"'}, body=json.dumps(final))

    await page.goto(demo_server.url("/demo/"))
    await page.route("**/v1/registrations", post)
    await page.route("**/v1/submissions/s1", get)
    got = await page.evaluate(
        """async () => {
        const m = await import("./intake-client.js");
        const stages = [];
        const sent = await m.submitRegistration({
            registration: { full_name: "Siti" },
            photo: new Blob([new Uint8Array(1000)], { type: "image/jpeg" }),
            onProgress: (p) => stages.push(p.stage),
            options: { backoffMs: 200 },
        });
        const updates = [];
        const polled = await m.pollStatus({ accepted: sent.accepted, onUpdate: (s) => updates.push(s.state) });
        return { ok: sent.ok, attempts: sent.attempts, stages, updates, final: polled.final, polls: polled.polls,
                 reason: m.messageFor(polled.status.reason, "id") };
    }"""
    )
    assert got["ok"] is True and got["attempts"] == 2
    assert "waiting" in got["stages"] and got["stages"][-1] == "accepted"
    assert len(keys) == 2 and keys[0] == keys[1]
    assert tokens == ["Bearer t"] * 3
    assert polls == [None, '"a"', '"a"']  # If-None-Match carries the last ETag
    assert got["updates"] == ["received", "rejected"]  # the 304 changed nothing
    assert got["final"] is True and got["polls"] == 3
    assert got["reason"] == rejected.message_id
