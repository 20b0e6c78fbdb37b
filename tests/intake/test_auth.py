"""Signed requests: key parsing, signing, and every way verification refuses (no network)."""

from __future__ import annotations

import pytest

from intake.auth import AuthError, ClientKey, Verifier, first_key, parse_client_keys, sign

SECRET_A = "a" * 40
SECRET_B = "b" * 40
KEYS = parse_client_keys(f"web:k1:{SECRET_A}:submit, web:k2:{SECRET_B}:submit, office:o1:{'o' * 32}:read_ktp")
NOW = 1_800_000_000


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def verifier(max_nonces: int = 1000) -> tuple[Verifier, Clock]:
    clock = Clock()
    return Verifier(KEYS, max_skew_s=300, max_nonces=max_nonces, clock=clock), clock


def key(client: str = "web", key_id: str = "k1") -> ClientKey:
    return KEYS[(client, key_id)]


def headers_for(k: ClientKey, method: str = "POST", path: str = "/v1/registrations", **kw: object) -> dict[str, str]:
    out = sign(k, method, path, timestamp=NOW, **kw)  # type: ignore[arg-type]
    if "idempotency_key" in kw and kw["idempotency_key"] is not None:
        out["Idempotency-Key"] = str(kw["idempotency_key"])
    return out


def refused(
    v: Verifier, headers: dict[str, str], code: str, scope: str = "submit", path: str = "/v1/registrations"
) -> None:
    with pytest.raises(AuthError) as info:
        v.verify("POST", path, headers, scope)
    assert info.value.code == code


def test_signed_request_verifies_and_names_the_client() -> None:
    v, _ = verifier()
    principal = v.verify("POST", "/v1/registrations", headers_for(key(), idempotency_key="abcd-1234"), "submit")
    assert (principal.client_id, principal.key_id, principal.actor) == ("web", "k1", None)


def test_both_keys_of_a_client_verify_during_rotation() -> None:
    v, _ = verifier()
    assert v.verify("POST", "/v1/registrations", headers_for(key("web", "k1")), "submit").key_id == "k1"
    assert v.verify("POST", "/v1/registrations", headers_for(key("web", "k2")), "submit").key_id == "k2"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer abc"},
        {"Authorization": "INTAKE-HMAC-SHA256 Credential=web/k1"},
        {"Authorization": "INTAKE-HMAC-SHA256 " + "x" * 600},
    ],
)
def test_missing_or_malformed_header_is_unauthorized(headers: dict[str, str]) -> None:
    refused(verifier()[0], headers, "unauthorized")


def test_wrong_secret_is_unauthorized() -> None:
    forged = ClientKey("web", "k1", b"f" * 40, frozenset({"submit"}))
    refused(verifier()[0], headers_for(forged), "unauthorized")


def test_unknown_client_or_key_id_is_unauthorized() -> None:
    refused(
        verifier()[0], headers_for(ClientKey("web", "k9", SECRET_A.encode(), frozenset({"submit"}))), "unauthorized"
    )
    refused(
        verifier()[0], headers_for(ClientKey("evil", "k1", SECRET_A.encode(), frozenset({"submit"}))), "unauthorized"
    )


@pytest.mark.parametrize("field", ["path", "method", "idempotency_key", "actor", "signature"])
def test_signature_binds_every_signed_part(field: str) -> None:
    v, _ = verifier()
    h = headers_for(key(), idempotency_key="key-00000001")
    method, path = "POST", "/v1/registrations"
    if field == "path":
        path = "/v1/submissions/abc/ktp/card"
    elif field == "method":
        method = "GET"
    elif field == "idempotency_key":
        h["Idempotency-Key"] = "key-00000002"
    elif field == "actor":
        h["Intake-Actor"] = "someone"
    else:
        h["Authorization"] = h["Authorization"][:-2] + ("AA" if not h["Authorization"].endswith("AA") else "BB")
    with pytest.raises(AuthError) as info:
        v.verify(method, path, h, "submit")
    assert info.value.code == "unauthorized"


def test_non_ascii_signature_is_unauthorized_not_a_crash() -> None:
    h = headers_for(key())
    h["Authorization"] = h["Authorization"].rsplit("Signature=", 1)[0] + "Signature=é" * 3
    refused(verifier()[0], h, "unauthorized")
    h = headers_for(key())
    h["Authorization"] = h["Authorization"].replace(f"Timestamp={NOW}", "Timestamp=１２３")
    refused(verifier()[0], h, "unauthorized")


@pytest.mark.parametrize("offset", [-301, 301, -10_000])
def test_expired_or_future_signature(offset: int) -> None:
    v, clock = verifier()
    clock.now = NOW + offset  # the request was signed at NOW
    refused(v, headers_for(key()), "signature_expired")


def test_within_skew_is_fine() -> None:
    v, clock = verifier()
    clock.now = NOW + 299
    v.verify("POST", "/v1/registrations", headers_for(key()), "submit")


def test_replayed_signature_is_refused_once_seen() -> None:
    v, _ = verifier()
    h = headers_for(key(), nonce="n" * 20)
    v.verify("POST", "/v1/registrations", h, "submit")
    refused(v, h, "request_replayed")
    # the same nonce of another client is another request
    v.verify("POST", "/v1/registrations", headers_for(key("office", "o1"), nonce="n" * 20), "read_ktp")


def test_nonce_cache_is_bounded() -> None:
    v, _ = verifier(max_nonces=10)
    for i in range(50):
        v.verify("POST", "/v1/registrations", headers_for(key(), nonce=f"nonce-{i:012d}"), "submit")
    assert len(v._seen) <= 10


def test_expired_nonces_are_forgotten() -> None:
    v, clock = verifier()
    v.verify("POST", "/v1/registrations", headers_for(key(), nonce="old-nonce-000001"), "submit")
    clock.now = NOW + 700  # past twice the skew
    v.verify("POST", "/v1/registrations", sign(key(), "POST", "/v1/registrations", timestamp=NOW + 700), "submit")
    assert "web/old-nonce-000001" not in v._seen


def test_key_without_the_scope_is_forbidden() -> None:
    refused(verifier()[0], headers_for(key("office", "o1")), "forbidden", scope="submit")
    refused(verifier()[0], headers_for(key()), "forbidden", scope="read_ktp")


def test_actor_is_signed_and_returned() -> None:
    v, _ = verifier()
    path = "/v1/submissions/abc/ktp/card"
    h = sign(key("office", "o1"), "GET", path, actor="siti@kemnaker", timestamp=NOW)
    assert v.verify("GET", path, h, "read_ktp").actor == "siti@kemnaker"
    bad = sign(key("office", "o1"), "GET", path, actor="x", timestamp=NOW)
    bad["Intake-Actor"] = "bad actor!"
    with pytest.raises(AuthError):
        v.verify("GET", path, bad, "read_ktp")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("web:k1:short:submit", "at least 32"),
        ("web:k1:" + "s" * 40, "expected client:key_id:secret:scopes"),
        ("Web:k1:" + "s" * 40 + ":submit", "client and key id"),
        ("web:k1:" + "s" * 40 + ":admin", "scopes must be among"),
        ("web:k1:" + "s" * 40 + ":submit,web:k1:" + "t" * 40 + ":submit", "duplicate key id"),
    ],
)
def test_malformed_keys_are_refused_without_quoting_the_secret(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_client_keys(spec)
    assert "s" * 32 not in str(info.value) and "t" * 32 not in str(info.value)


def test_key_repr_hides_the_secret() -> None:
    assert SECRET_A not in repr(key()) and SECRET_A not in str(key())


def test_first_key_by_scope() -> None:
    assert first_key(KEYS, "read_ktp").client_id == "office"
    with pytest.raises(LookupError):
        first_key(parse_client_keys(f"web:k1:{SECRET_A}:submit"), "read_ktp")
