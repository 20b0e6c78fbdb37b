"""The validation benchmark's two variants take the two email paths: the plain one never calls email-validator."""

from __future__ import annotations

import random
from datetime import date

import email_validator
import pytest

from loadtests.bench_registration import _cpu_us, _variants
from loadtests.payloads import fresh_registration


@pytest.mark.parametrize(("variant", "calls"), [("plain-path", 0), ("validator", 5)])
def test_each_variant_checks_the_email_its_own_way(variant: str, calls: int, monkeypatch: pytest.MonkeyPatch) -> None:
    validate, seen = email_validator.validate_email, []

    def counting(*args: object, **kwargs: object) -> object:
        seen.append(args)
        return validate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(email_validator, "validate_email", counting)
    rng = random.Random(1)
    with _variants()[variant]():
        assert _cpu_us([fresh_registration(rng) for _ in range(5)], date.today()) > 0
    assert len(seen) == calls
