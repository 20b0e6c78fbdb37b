"""Client authentication: HMAC-signed requests with key ids, so keys can be rotated without downtime.

Who holds a key: the registration front end's backend (scope ``submit``) and the verification back office
(scope ``read_ktp``). Browsers hold none: before each upload attempt the browser asks the front end's backend,
after the applicant's login and OTP, to sign that one request (method, path, Idempotency-Key), much as S3
presigns a POST. A signature is cheap to make and is never reused.

The header::

    Authorization: INTAKE-HMAC-SHA256 Credential=<client>/<key id>, Timestamp=<unix s>, Nonce=<16-64 chars>,
                   Signature=<base64url HMAC-SHA256>

over the string to sign (``\\n``-joined): the scheme, the method, the path, the timestamp, the nonce, the
``Idempotency-Key`` header and the ``Intake-Actor`` header (empty when absent). So a signature cannot be moved
to another route, another submission or another operator.

Checks, in order (each failure an :class:`AuthError` with a reason code, never naming a secret):

* ``unauthorized``: no or malformed header, unknown client or key id, wrong signature;
* ``signature_expired``: the timestamp is more than ``max_skew_s`` away from this machine's clock;
* ``request_replayed``: this process saw the nonce before, within the validity window;
* ``forbidden``: the key is valid but lacks the route's scope.

Replays are refused per process (a bounded cache, oldest first out). A replay that reaches another process
within the window is still bound to the same Idempotency-Key, so it resolves to the same submission id and
registers nothing new.

Rotation: list the new key id beside the old one (``INTAKE_CLIENT_KEYS``), move the signer to the new one,
then remove the old one. Both verify meanwhile.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import ClientHandlerType, ClientMiddlewareType, ClientRequest, ClientResponse

SCHEME = "INTAKE-HMAC-SHA256"
AUTH_CODES = ("unauthorized", "signature_expired", "request_replayed", "forbidden")
"""Every reason code :class:`AuthError` carries."""
SCOPES = frozenset({"submit", "read_ktp"})
ACTOR_HEADER = "Intake-Actor"

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ACTOR_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"
"""The ``Intake-Actor`` header's syntax: an operator's user name or email."""
_ACTOR = re.compile(ACTOR_PATTERN)
_PARAM = re.compile(r"\s*([A-Za-z]+)=([^,\s]*)\s*(?:,|$)")
_MIN_SECRET = 32


class AuthError(Exception):
    """A request that is not authenticated (or not allowed): ``code`` is a reason code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class ClientKey:
    """One key of one client. ``secret`` is never logged or printed (``repr`` hides it)."""

    client_id: str
    key_id: str
    secret: bytes
    scopes: frozenset[str]

    def __repr__(self) -> str:
        return f"ClientKey({self.client_id}/{self.key_id}, scopes={sorted(self.scopes)})"


@dataclass(frozen=True)
class Principal:
    """Who made an authenticated request: the client, the key it used, its scopes and the named operator."""

    client_id: str
    key_id: str
    scopes: frozenset[str]
    actor: str | None


def parse_client_keys(spec: str) -> dict[tuple[str, str], ClientKey]:
    """Parse ``client:key_id:secret:scope+scope`` entries separated by commas.

    Raises ``ValueError`` naming the entry by position (never quoting a secret) when one is malformed: names
    are 1-32 of ``[a-z0-9._-]``, secrets at least 32 characters, scopes from :data:`SCOPES`.
    """
    keys: dict[tuple[str, str], ClientKey] = {}
    for position, entry in enumerate((e.strip() for e in spec.split(",")), start=1):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) != 4:
            raise ValueError(f"entry {position}: expected client:key_id:secret:scopes")
        client_id, key_id, secret, scopes_text = parts
        scopes = frozenset(s for s in scopes_text.split("+") if s)
        if not _NAME.match(client_id) or not _NAME.match(key_id):
            raise ValueError(f"entry {position}: client and key id must be 1-32 of [a-z0-9._-]")
        if len(secret) < _MIN_SECRET:
            raise ValueError(f"entry {position}: the secret must be at least {_MIN_SECRET} characters")
        if not scopes or not scopes <= SCOPES:
            raise ValueError(f"entry {position}: scopes must be among {'+'.join(sorted(SCOPES))}")
        if (client_id, key_id) in keys:
            raise ValueError(f"entry {position}: duplicate key id {client_id}/{key_id}")
        keys[(client_id, key_id)] = ClientKey(client_id, key_id, secret.encode(), scopes)
    return keys


def first_key(keys: Mapping[tuple[str, str], ClientKey], scope: str) -> ClientKey:
    """The first listed key with ``scope`` (what a local signer uses). Raises ``LookupError`` when none has it."""
    for key in keys.values():
        if scope in key.scopes:
            return key
    raise LookupError(f"no client key has scope {scope}")


def signing_key(spec: str, scope: str) -> ClientKey:
    """The first key with ``scope`` in ``spec`` (``INTAKE_CLIENT_KEYS``): what a signer of this service uses.
    Raises ``ValueError`` for a malformed spec and ``LookupError`` when no key has the scope."""
    return first_key(parse_client_keys(spec), scope)


def _string_to_sign(method: str, path: str, timestamp: str, nonce: str, *, idempotency_key: str, actor: str) -> bytes:
    return "\n".join((SCHEME, method.upper(), path, timestamp, nonce, idempotency_key, actor)).encode()


def _mac(secret: bytes, message: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode().rstrip("=")


def sign(
    key: ClientKey,
    method: str,
    path: str,
    *,
    idempotency_key: str | None = None,
    actor: str | None = None,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers that authenticate one request (``Authorization``, and ``Intake-Actor`` when given)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_urlsafe(18)
    signature = _mac(
        key.secret, _string_to_sign(method, path, ts, nonce, idempotency_key=idempotency_key or "", actor=actor or "")
    )
    headers = {
        "Authorization": (
            f"{SCHEME} Credential={key.client_id}/{key.key_id}, Timestamp={ts}, Nonce={nonce}, Signature={signature}"
        )
    }
    if actor is not None:
        headers[ACTOR_HEADER] = actor
    return headers


def _parse_header(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme != SCHEME or len(rest) > 512:
        raise AuthError("unauthorized")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        params[match.group(1)] = match.group(2)
    if not {"Credential", "Timestamp", "Nonce", "Signature"} <= params.keys():
        raise AuthError("unauthorized")
    return params


class Verifier:
    """Checks signed requests against the configured keys. Not thread-safe; one per event loop.

    ``verify`` never blocks and never raises anything but :class:`AuthError`. The replay cache holds at most
    ``max_nonces`` nonces; each is kept for twice ``max_skew_s`` (past that its timestamp is refused anyway).
    """

    def __init__(
        self,
        keys: Mapping[tuple[str, str], ClientKey],
        max_skew_s: float,
        max_nonces: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = dict(keys)
        self._max_skew_s = max_skew_s
        self._max_nonces = max_nonces
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def verify(self, method: str, path: str, headers: Mapping[str, str], scope: str) -> Principal:
        """Authenticate a request for ``scope``; returns who made it. Raises :class:`AuthError`."""
        params = _parse_header(headers.get("Authorization", ""))
        client_id, _, key_id = params["Credential"].partition("/")
        key = self._keys.get((client_id, key_id))
        nonce, ts = params["Nonce"], params["Timestamp"]
        if key is None or not _NONCE.match(nonce) or not (ts.isascii() and ts.isdigit()) or len(ts) > 12:
            raise AuthError("unauthorized")
        actor = headers.get(ACTOR_HEADER)
        if actor is not None and not _ACTOR.match(actor):
            raise AuthError("unauthorized")
        expected = _mac(
            key.secret,
            _string_to_sign(
                method, path, ts, nonce, idempotency_key=headers.get("Idempotency-Key", ""), actor=actor or ""
            ),
        )
        given = params["Signature"]
        if not given.isascii() or not hmac.compare_digest(expected, given):
            raise AuthError("unauthorized")
        now = self._clock()
        if abs(now - int(ts)) > self._max_skew_s:
            raise AuthError("signature_expired")
        self._remember(f"{client_id}/{nonce}", now)
        if scope not in key.scopes:
            raise AuthError("forbidden")
        return Principal(client_id, key_id, key.scopes, actor)

    def _remember(self, nonce: str, now: float) -> None:
        while self._seen:
            oldest, expires = next(iter(self._seen.items()))
            if expires > now and len(self._seen) < self._max_nonces:
                break
            del self._seen[oldest]
        if nonce in self._seen:
            raise AuthError("request_replayed")
        self._seen[nonce] = now + 2 * self._max_skew_s


def signing_middleware(key: ClientKey, actor: str | None = None) -> ClientMiddlewareType:
    """An aiohttp client middleware that signs every request which carries no ``Authorization`` of its own.

    For Python clients of the API (tools, load tests, tests): ``ClientSession(middlewares=(signing_middleware(k),))``.
    Each attempt gets a fresh timestamp and nonce, so a retry is a new signature over the same Idempotency-Key.
    """

    async def sign_request(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        if "Authorization" not in request.headers:
            request.headers.update(
                sign(
                    key,
                    request.method,
                    request.url.path,
                    idempotency_key=request.headers.get("Idempotency-Key"),
                    actor=actor,
                )
            )
        return await handler(request)

    return sign_request
