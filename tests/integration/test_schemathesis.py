"""Schemathesis against the live service: the real API (real Kafka producer, real MinIO) answers no 5xx.

The schema is loaded from the service's own ``/openapi.json``. For every operation, Hypothesis generates a
bounded number of cases from it, valid (``positive``) and deliberately invalid (``negative``: wrong types,
patterns, missing parts, broken multipart), sends them over HTTP and checks each answer: no server error, a
documented status, content type and headers, and a body matching the documented schema. Requests are signed
as the API's clients sign them (so cases reach the handlers, not just the 401). Status reads are sent
with the submission's real status token half of the time, so the storage path is exercised too. Failures are
collected (not raised one by one) and reported together with the exact request.

Requests are blocking (``requests``), so the run happens in a worker thread while the event loop serves the API.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any
from urllib.parse import unquote, urlsplit

import hypothesis
import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestClient
from hypothesis import strategies as st
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ingest.schemas import EXAMPLE_REGISTRATION
from ingest.tokens import SUBMISSION_ID, status_token
from intake.auth import sign
from intake.settings import Settings
from tests.support import client_key, make_registration

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 30
"""Cases per operation and generation mode (positive, negative)."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
STATUS_PATH = "/v1/submissions/{submission_id}"


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 500), (200, 180, 150)).save(out, "JPEG")  # big enough for the edge's size check
    return out.getvalue()


def _describe(case: schemathesis.Case[Any], response: schemathesis.Response | None, error: BaseException) -> str:
    """The exact request (method, path, headers, body summary) and the answer, for the report."""
    request = response.request if response is not None else None
    lines = [f"{case.method} {case.formatted_path}: {type(error).__name__}: {str(error).strip()[:600]}"]
    if request is not None:
        lines.append(f"  url: {request.url}")
        lines.append(f"  headers: {dict(request.headers)}")
        body = request.body or b""
        raw = body if isinstance(body, bytes) else str(body).encode()
        lines.append(f"  body ({len(raw)} bytes): {raw[:800]!r}")
    if response is not None:
        lines.append(f"  answered {response.status_code}: {response.content[:400]!r}")
    return "\n".join(lines)


class _Signer(requests.auth.AuthBase):
    """Signs every request as the API's clients do (the back office's key for image reads, the front end's for the
    rest), so that generated cases reach the handlers; status reads keep their ``Bearer`` token."""

    def __init__(self, settings: Settings) -> None:
        self.submit = client_key(settings, "submit")
        self.read = client_key(settings, "read_ktp")

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if str(r.headers.get("Authorization", "")).startswith("Bearer "):
            return r
        path = unquote(urlsplit(r.url or "").path)
        actor, idem = r.headers.get("Intake-Actor"), r.headers.get("Idempotency-Key")
        r.headers.update(
            sign(
                self.read if "/ktp/" in path else self.submit,
                r.method or "GET",
                path,
                idempotency_key=idem if isinstance(idem, str) else None,
                actor=actor if isinstance(actor, str) else None,
            )
        )
        return r


def _run(schema: Any, base_url: str, settings: Settings) -> tuple[list[str], dict[str, int]]:
    """Run every operation in both generation modes; return the failures and a count of answers by status."""
    failures: dict[tuple[str, str, str], str] = {}
    statuses: dict[str, int] = {}
    token_key = settings.security.status_token_key.encode()
    session = requests.Session()
    session.auth = _Signer(settings)

    def send(case: schemathesis.Case[Any]) -> schemathesis.Response | None:
        response: schemathesis.Response | None = None
        try:
            response = case.call(base_url=base_url, session=session, timeout=30)
            statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
            case.validate_response(response, checks=CHECKS)
        except (schemathesis.errors.FailureGroup, Exception) as exc:  # failed checks, or no answer at all
            code = str(response.status_code) if response is not None else "no answer"
            key = (case.operation.label, code, type(exc).__name__)
            failures.setdefault(key, _describe(case, response, exc))
        return response

    for result in schema.get_all_operations():
        operation = result.ok()
        # Coverage phase: deterministic boundary and invalid values of every parameter and body property, the
        # schema's examples, missing required parts and unexpected methods.
        config = schema.config.generation_for(operation=operation)
        for case in schema.iter_coverage_cases(
            operation, generation_modes=list(schemathesis.GenerationMode), generation_config=config
        ):
            send(case)
        # Fuzzing phase: random valid and invalid cases.
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)

            @hypothesis.settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.filter_too_much],
            )
            @hypothesis.given(case=strategy, signed=st.booleans())
            def run(case: schemathesis.Case[Any], signed: bool) -> None:
                submission_id = (case.path_parameters or {}).get("submission_id")
                if signed and isinstance(submission_id, str) and SUBMISSION_ID.match(submission_id):
                    case.headers["Authorization"] = "Bearer " + status_token(token_key, submission_id)
                send(case)

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                # Nothing to make invalid (no parameters, no body): only the positive mode applies.
                assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label

    # A real registration in the documented encoding is accepted (202 after Kafka's ack), and its status reads.
    def expect(response: schemathesis.Response | None, status: int, what: str) -> bool:
        if response is not None and response.status_code == status:
            return True
        got = "no answer" if response is None else f"{response.status_code} {response.content[:300]!r}"
        failures[(what, "", "")] = f"{what}: expected {status}, got {got}"
        return False

    post = schema["/v1/registrations"]["POST"]
    body = {"registration": make_registration(), "ktp_photo": _jpeg()}
    headers = {"Idempotency-Key": "schemathesis-1"}
    accepted = send(post.Case(body=body, media_type="multipart/form-data", headers=headers))
    if expect(accepted, 202, "a valid registration") and accepted is not None:
        answer = accepted.json()
        status = schema[STATUS_PATH]["GET"]
        ident = {"submission_id": answer["submission_id"]}
        token = {"Authorization": f"Bearer {answer['status_token']}"}
        read = send(status.Case(path_parameters=ident, headers=token))
        if expect(read, 200, "its status") and read is not None:
            etag = {"If-None-Match": read.headers["etag"][0], **token}
            expect(send(status.Case(path_parameters=ident, headers=etag)), 304, "its status again (If-None-Match)")
    example = {"registration": EXAMPLE_REGISTRATION, "ktp_photo": _jpeg()}
    expect(send(post.Case(body=example, media_type="multipart/form-data")), 202, "the document's example")
    session.close()
    return list(failures.values()), statuses


@pytest.mark.filterwarnings(
    # The API under test runs in this process, and its Kafka clients (aiokafka shuffles partitions and brokers with
    # the `random` module: the status view's follower, the queue sampler) change the global random state from the
    # event loop's thread while Hypothesis draws a case in the worker thread; the strategies themselves use none.
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)
async def test_no_server_errors_and_answers_conform(api: TestClient[Any, Any], topics_ready: Settings) -> None:
    base_url = str(api.make_url("")).rstrip("/")
    schema = await asyncio.to_thread(schemathesis.openapi.from_url, base_url + "/openapi.json")
    schema.validate()
    failures, statuses = await asyncio.to_thread(_run, schema, base_url, topics_ready)
    assert failures == [], "\n\n".join(failures) + f"\n\nanswers by status: {json.dumps(statuses, sort_keys=True)}"
    assert not any(code.startswith("5") for code in statuses), statuses
    assert sum(statuses.values()) >= 4 * MAX_EXAMPLES, statuses
    # The two valid registrations sent explicitly; generated photos are random bytes, which the edge's header
    # check refuses (422 not_an_image), so generated cases stop there.
    assert statuses.get("202", 0) >= 2, statuses


_REGISTRATION_HUGE_WAVE = json.dumps(make_registration()).replace('"wave": 1', '"wave": 1' + "0" * 5000)

HOSTILE = [
    # A body declared `Content-Encoding: deflate` that does not inflate: aiohttp's RequestPayloadError while the
    # parts are read must answer 400 malformed_multipart (was a 500).
    pytest.param({"Content-Encoding": "deflate"}, None, id="content-encoding-deflate"),
    # An integer of more than 4300 digits makes json.loads raise ValueError: 400 invalid_json (was a 500).
    pytest.param({}, _REGISTRATION_HUGE_WAVE, id="integer-over-4300-digits"),
]


@pytest.mark.parametrize(("headers", "registration"), HOSTILE)
async def test_hostile_requests_found_by_probing_get_4xx(
    api: TestClient[Any, Any], topics_ready: Settings, headers: dict[str, str], registration: str | None
) -> None:
    """Requests found by probing beyond the schema, which once answered 500: now a coded 4xx."""
    base_url = str(api.make_url("")).rstrip("/")
    schema = await asyncio.to_thread(schemathesis.openapi.from_url, base_url + "/openapi.json")
    post = schema["/v1/registrations"]["POST"]
    body: dict[str, Any] = {"registration": registration or json.dumps(make_registration()), "ktp_photo": _jpeg()}
    case = post.Case(body=body, media_type="multipart/form-data", headers=headers)
    session = requests.Session()
    session.auth = _Signer(topics_ready)
    response = await asyncio.to_thread(case.call, base_url=base_url, session=session, timeout=30)
    session.close()
    assert 400 <= response.status_code < 500, _describe(case, response, RuntimeError("server error"))
