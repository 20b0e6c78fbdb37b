"""The load generators' API key: like the registration site's backend, they sign every upload attempt.

The key comes from ``INTAKE_CLIENT_KEYS`` (the service's own variable; the first key with scope ``submit``), read
when first needed. ``loadtests.bench`` gives the service and the generators a key of its own for each run.
"""

from __future__ import annotations

import functools
import os

from intake.auth import ClientKey, sign, signing_key

UPLOAD_PATH = "/v1/registrations"


@functools.cache
def load_key() -> ClientKey:
    """The first ``submit`` key of ``INTAKE_CLIENT_KEYS``. Raises ``SystemExit`` with a hint when there is none."""
    try:
        return signing_key(os.environ.get("INTAKE_CLIENT_KEYS", ""), "submit")
    except (LookupError, ValueError) as exc:
        raise SystemExit(
            f"load tests sign their uploads: set INTAKE_CLIENT_KEYS as for the service "
            f'(`eval "$(deploy/local/stack.sh env)"`): {exc}'
        ) from None


def upload_headers(idempotency_key: str, key: ClientKey | None = None, timestamp: int | None = None) -> dict[str, str]:
    """Authorization for one upload attempt with ``idempotency_key`` (a fresh nonce each call), signed for
    ``timestamp`` (unix s; default now: a plan made ahead signs each request for the time it is due)."""
    return sign(key or load_key(), "POST", UPLOAD_PATH, idempotency_key=idempotency_key, timestamp=timestamp)
