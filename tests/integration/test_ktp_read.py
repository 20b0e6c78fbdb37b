"""The back office reads a stored KTP image through the API; every read is in the audit log (real Kafka, MinIO)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from intake.audit import read_audit
from intake.settings import Settings, to_environ
from tests.conftest import ON_EVERY_S3_BACKEND
from tests.integration.conftest import Consumers, started_api
from tests.integration.test_privacy import _erase_cli, _processed

pytestmark = [pytest.mark.integration, ON_EVERY_S3_BACKEND]


async def test_image_reads_are_served_and_audited(
    api: TestClient[Any, Any], consumers: Consumers, topics_ready: Settings
) -> None:
    reg, accepted = await _processed(api, consumers)
    sid = accepted["submission_id"]
    path = f"/v1/submissions/{sid}/ktp/card"
    office = await started_api(topics_ready, scope="read_ktp", actor="siti.verifikator")  # the audit needs Kafka
    try:
        resp = await office.get(path)
        assert resp.status == 200, await resp.text()
        card = Image.open(io.BytesIO(await resp.read()))
        assert card.format == "JPEG" and card.size == (1011, 638)
        assert resp.headers["Cache-Control"] == "no-store"
        # the front end's key may submit, not read; the applicant's status token reads the status, not the image
        refused = await api.get(path)
        assert refused.status == 403
        bearer = await api.get(path, headers={"Authorization": f"Bearer {accepted['status_token']}"})
        assert bearer.status == 401

        env = {**os.environ, **to_environ(topics_ready)}
        await asyncio.to_thread(_erase_cli, reg["nik"], env)
        gone = await office.get(path)
        assert gone.status == 404
    finally:
        await office.close()

    reads = [r async for r in read_audit(topics_ready, sid)]
    assert [(r.actor, r.client_id, r.kind, r.outcome) for r in reads] == [
        ("siti.verifikator", "backoffice", "card", "served"),
        ("siti.verifikator", "backoffice", "card", "not_found"),
    ]
    listed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli", "audit", "list", "--submission", sid],
        env={**os.environ, **to_environ(topics_ready)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [line["outcome"] for line in lines] == ["served", "not_found"]
    assert reg["nik"] not in listed.stdout
