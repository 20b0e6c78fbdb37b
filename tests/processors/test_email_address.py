"""Tests for processors.email_address: the plain-address path answers exactly what email-validator answers."""

from __future__ import annotations

import random
import string

import email_validator
import pytest

from processors.email_address import normalize_email, plain_email

_ATOM = string.ascii_letters + string.digits + "_+-"
_LABEL = string.ascii_letters + string.digits + "-"
_TLDS = ["com", "id", "ID", "Co", "org", "museum", "x", "c0m", "123", "local", "test", "onion", "arpa", "invalid"]
_TLDS += ["localhost", "LOCAL", "xn--p1ai", "a" * 63, "b" * 64]
_ODD = [*".@ -_+\t\"\\()[],;:!#$%&'*/=?^`{|}~", "é", "\u0130", "\u212a", "\u00a0", "١", "xn--", "--", ".."]


def _atom(rng: random.Random, alphabet: str) -> str:
    size = rng.choice([1, 2, 5, 12, 20, rng.randint(1, 70)])
    return "".join(rng.choice(alphabet) for _ in range(size))


def _address(rng: random.Random) -> str:
    """Mostly plain addresses, near every limit the plain path checks; a third of them then mutated."""
    local = ".".join(_atom(rng, _ATOM) for _ in range(rng.choice([1, 1, 2, 3, 5])))
    labels = [_atom(rng, _LABEL) for _ in range(rng.choice([1, 1, 2, 3, 9]))]
    if rng.random() < 0.05:
        labels.append("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.choice([61, 62, 63, 64]))))
    address = f"{local}@{'.'.join([*labels, rng.choice(_TLDS)])}"
    if rng.random() < 0.05:  # past the address's length limit, or just within it
        address = "a" * rng.randint(240 - len(address), 260 - len(address)) + address if len(address) < 240 else address
    if rng.random() < 1 / 3:
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(address))
            if rng.random() < 0.5:
                address = address[:at] + rng.choice(_ODD) + address[at:]
            else:
                address = address[:at] + address[at + 1 :]
    return address


def _validator(value: str) -> str | None:
    try:
        return str(email_validator.validate_email(value, check_deliverability=False).normalized)
    except email_validator.EmailNotValidError:
        return None


def _normalized(value: str) -> str | None:
    try:
        return normalize_email(value)
    except email_validator.EmailNotValidError:
        return None


def test_plain_path_agrees_with_email_validator() -> None:
    rng = random.Random(20261201)
    plain = valid = 0
    for _ in range(20_000):
        address = _address(rng)
        expected = _validator(address)
        fast = plain_email(address)
        if fast is not None:
            plain += 1
            assert fast == expected, address
        assert _normalized(address) == expected, address
        valid += expected is not None
    # Both paths must be exercised: about half the valid ones here are plain (the rest have odd top-level
    # domains, non-ASCII or rare characters, or are near a limit).
    assert 0.3 * valid < plain < 0.9 * valid
    assert valid > 5_000


@pytest.mark.parametrize(
    "address",
    [
        "budi.santoso@gmail.com",
        "siti_nur88@yahoo.co.id",
        "ayu-lestari@outlook.com",
        "r.hidayat@kemnaker.go.id",
        "dewi+prakerja@gmail.com",
        "agus1990@student.ui.ac.id",
        "M.Rizky@Gmail.Com",
        "applicant.00c0ffee42@example.co.id",  # the load tests' applicants
    ],
)
def test_everyday_addresses_take_the_plain_path(address: str) -> None:
    assert plain_email(address) == _validator(address) is not None


@pytest.mark.parametrize(
    ("address", "normalized"),
    [
        ("Siti.Nuraini@Example.CO.ID", "Siti.Nuraini@example.co.id"),
        ("budi+prakerja@mail.example.id", "budi+prakerja@mail.example.id"),
        ("-_-@a-b.c-d.com", "-_-@a-b.c-d.com"),
        ("a" * 65 + "@example.com", "a" * 65 + "@example.com"),  # email-validator allows a local part past 64
        ("x@" + "d" * 63 + ".com", "x@" + "d" * 63 + ".com"),
    ],
)
def test_plain_addresses_take_the_plain_path(address: str, normalized: str) -> None:
    assert plain_email(address) == normalized == _validator(address)


@pytest.mark.parametrize(
    "address",
    [
        "a" * 10 + "@" + ".".join(["d" * 60] * 4) + ".com",  # address past 254
        "a@ab--cd.com",  # IDNA rules apply
        "a@xn--p1ai.com",
        "a@example.local",  # special-use names
        "a@example.TEST",
        "a@localhost",
        "a@example.c0m",
        "a@b",
        "a..b@example.com",
        ".a@example.com",
        '"a b"@example.com',
        "a!b@example.com",
        "budi@exämple.com",
        "a@-example.com",
        "a@example-.com",
        "a@\u212aelvin.com",  # the Kelvin sign lower-cases to "k": never taken as ASCII
    ],
)
def test_other_addresses_go_to_email_validator(address: str) -> None:
    assert plain_email(address) is None
    assert _normalized(address) == _validator(address)


def test_a_plain_address_never_reaches_email_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("email-validator called for a plain address")

    monkeypatch.setattr(email_validator, "validate_email", refuse)
    assert normalize_email("ayu.lestari@Example.co.id") == "ayu.lestari@example.co.id"
    with pytest.raises(AssertionError):
        normalize_email("ayu.lestari@example.local")


def test_the_special_use_list_is_email_validators_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(email_validator, "SPECIAL_USE_DOMAIN_NAMES", ["example.co.id"])
    assert plain_email("ayu@example.co.id") is None
    assert _normalized("ayu@example.co.id") is None  # email-validator refuses it too
    assert plain_email("ayu@x.test") == _validator("ayu@x.test") == "ayu@x.test"
