"""``intake keys rotate`` as a command, on the in-memory store: exit codes and what it says (the real servers:
tests/integration/test_key_rotation.py)."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

import intake.storage
from cli.main import main
from intake.crypto import KeyStore, new_kek_entry, parse_keks
from intake.storage import MemoryStore
from tests.intake.test_settings import ENV
from tests.store_doubles import IgnoresIfMatch

OLD, NEW = new_kek_entry("k1"), new_kek_entry("k2")


async def _store(kind: type[MemoryStore], monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    """A store holding 3 keys wrapped by k1, used by the command, whose INTAKE_DATA_KEKS is k2 then k1."""
    for name, value in {**ENV, "INTAKE_DATA_KEKS": f"{NEW},{OLD}"}.items():
        monkeypatch.setenv(name, value)
    store = kind()
    await store.ensure_buckets(["intake-keys"])
    keys = KeyStore(store, "intake-keys", parse_keks(OLD))
    for n in range(3):
        await keys.get_or_create(hashlib.sha256(b"%d" % n).hexdigest())
    monkeypatch.setattr(intake.storage, "build_store", lambda settings: store)
    return store


async def test_check_rotate_check(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    await _store(MemoryStore, monkeypatch)
    assert await _run("keys", "rotate", "--check") == 3
    out, err = capsys.readouterr()
    assert json.loads(out)["by_kek"] == {"k2": 0, "k1": 3} and "run `intake keys rotate`" in err
    assert await _run("keys", "rotate") == 0
    out, err = capsys.readouterr()
    assert (json.loads(out)["rewrapped"], json.loads(out)["current"]) == (3, 0)
    assert "3 key(s): 3 rewrapped, 0 current, 0 gone, 0 failed" in err
    assert await _run("keys", "rotate", "--check") == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["removable"] == ["k1"] and "remove them from INTAKE_DATA_KEKS" in err


async def test_a_store_ignoring_if_match_is_refused_before_any_rewrap(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = await _store(IgnoresIfMatch, monkeypatch)
    before = dict(store.objects)
    assert await _run("keys", "rotate") == 3
    assert "If-Match" in capsys.readouterr().err
    assert store.objects == before


async def test_a_store_outage_is_exit_5_run_it_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = await _store(MemoryStore, monkeypatch)
    store.fail_next = 1
    assert await _run("keys", "rotate") == 5
    assert "run it again" in capsys.readouterr().err


async def _run(*argv: str) -> int:
    """The command runs its own event loop: in a thread, off this test's loop."""
    return await asyncio.to_thread(main, list(argv))
