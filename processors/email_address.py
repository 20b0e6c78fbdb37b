"""Email addresses: syntax check and normalisation, with ``email-validator``'s answers, quickly for plain ones.

Contract of :func:`normalize_email`: for any string it answers what
``email_validator.validate_email(value, check_deliverability=False).normalized`` answers, and raises
:class:`email_validator.EmailNotValidError` where that raises. No I/O (deliverability is never checked).

Why two paths: ``email-validator`` costs ~40 µs per address (its general parser: quoted and international local
parts, IDNA domains, special-use names), the largest single piece of validating a registration, which the API
does for every upload at a wave's opening. Nearly every applicant types a plain address: an ASCII dot-atom local
part of letters, digits and ``_+-``, and a domain of letter-digit-hyphen labels under a top-level domain of
letters. Those are recognised by one regular expression and normalised here, in ~1 µs: ``email-validator``
changes nothing in such an address but the domain's case. Anything else (any other character, a label with
``--`` (IDNA), a special-use top-level domain such as ``.local``, an address past 254 characters) goes to
``email-validator``. ``tests/processors/test_email_address.py`` holds the two paths to the same answers.
"""

from __future__ import annotations

import re

import email_validator

_PLAIN = re.compile(
    r"(?P<local>[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
"""A plain address: dot-atom local part of ``[A-Za-z0-9_+-]``, domain of LDH labels under a letters-only TLD."""
_MAX_ADDRESS = 254
"""The longest address ``email-validator`` accepts (RFC 3696 errata: a path of 256 less its angle brackets)."""


def plain_email(value: str) -> str | None:
    """The normalised form of ``value`` when it is a plain address (see the module docstring), else None: None
    means only "not plain", never "invalid"."""
    match = _PLAIN.fullmatch(value) if len(value) <= _MAX_ADDRESS else None
    if match is None:
        return None
    domain = match["domain"].lower()
    if "--" in domain or _special_use(domain):
        return None
    return f"{match['local']}@{domain}"


def normalize_email(value: str) -> str:
    """``value`` checked and normalised as ``email-validator`` does it (no deliverability check). Raises
    :class:`email_validator.EmailNotValidError` for an invalid address."""
    plain = plain_email(value)
    if plain is not None:
        return plain
    return str(email_validator.validate_email(value, check_deliverability=False).normalized)


def _special_use(domain: str) -> bool:
    """Whether ``email-validator`` refuses ``domain`` as a special-use name (``.local``, ``.test``, …), read from its
    own list at each call (an application may change that list)."""
    return any(domain == name or domain.endswith("." + name) for name in email_validator.SPECIAL_USE_DOMAIN_NAMES)
