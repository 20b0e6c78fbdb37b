"""The Expect benchmark against the in-memory API: an Expect client's refused upload costs it only its head, and
every refusal is answered."""

from __future__ import annotations

import argparse

import pytest

from loadtests import signing
from loadtests.bench_expect import measure
from loadtests.procs import REPO
from tests.support import SECRET_ENV


def test_an_expect_client_sends_only_its_head_and_every_refusal_is_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    signing.load_key.cache_clear()
    args = argparse.Namespace(uploads=5, size=200_000)
    try:
        expect = measure(REPO, args, expect=True)
        plain = measure(REPO, args, expect=False)
    finally:
        signing.load_key.cache_clear()
    assert expect["refused"] == plain["refused"] == 5  # every upload shed by the gate, none accepted
    assert expect["lost"] == 0 and expect["sent_bytes"] < 1_000  # the head alone
    assert plain["sent_bytes"] > 1_000  # the same uploads with their bodies sent at once
    assert expect["cpu_ms"] >= 0 and plain["cpu_ms"] >= 0
