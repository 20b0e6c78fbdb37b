"""Envelope encryption of personal data with per-applicant data keys, and crypto-shredding.

The API seals the registration fields and the photo of every submissions record with the applicant's data key
(:mod:`ingest.sealing`, :func:`intake.envelope.encode_sealed`), the consumers open them
(:meth:`intake.envelope.Sealed.open` in :mod:`consumers.pipeline`), and ``intake erase`` destroys the key
(:mod:`consumers.erasure`), so that every copy in the submissions, retry and dead-letter topics becomes unreadable
at once.

Design:

* **Key-encryption keys (KEKs)** come from settings (``INTAKE_DATA_KEKS``: ``kid:base64(32 bytes)``, comma-
  separated; the first is the active one that wraps new data keys, the others still unwrap: rotation is adding
  a new first entry, then ``intake keys rotate`` (:meth:`KeyStore.rewrap` of every stored key,
  :mod:`intake.key_rotation`), then removing the old entry).
* **Data keys (DEKs)** are random 256-bit AES keys, one per applicant, indexed by the applicant's keyed NIK hash
  (``HMAC(INTAKE_NIK_PEPPER, NIK)``, the Kafka record key): never derived from the NIK, so that destroying the
  stored key cannot be undone by deriving it again. A DEK is stored only wrapped (AES-GCM under a KEK, the
  applicant id and KEK id bound as associated data) in an object store bucket under ``keys/<nik hash>.json``
  (no NIK in the key), created with an atomic create-if-absent so concurrent processes agree on one key.
* **Sealing** a value: AES-256-GCM with a random 96-bit nonce, associated data naming what the value is (e.g. the
  submission id and the field), so a ciphertext cannot be moved to another record or field. Format:
  ``b"PKE" | version 1 | nonce (12) | ciphertext and tag``, built in one ``bytearray`` (see :func:`seal`).
* **Crypto-shredding:** :meth:`KeyStore.destroy` deletes the wrapped DEK; afterwards :meth:`KeyStore.get` returns
  None and :func:`open_sealed` cannot run, so any copy of the applicant's sealed values is unreadable. The bucket
  must not be versioned (a deleted version would keep the key; the start-up probe refuses one that is).

Errors: :class:`CryptoError` for anything that does not decrypt or parse (tampered, wrong key, wrong associated
data, unknown KEK id); :class:`KeyDestroyed` when the applicant's key is gone (erased). Messages never contain key
material or plaintext. Storage errors of the :class:`intake.storage.ObjectStore` propagate unchanged.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import os
import re
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from intake.storage import ObjectStore

MAGIC = b"PKE"
VERSION = 1
NONCE_BYTES = 12
KEY_BYTES = 32
TAG_BYTES = 16
_PREFIX = struct.Struct(">3sB")
OVERHEAD = _PREFIX.size + NONCE_BYTES + TAG_BYTES
"""Bytes a sealed value has beyond its plaintext."""
_KID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_APPLICANT = re.compile(r"^[0-9a-f]{64}$")

Rewrap = Literal["rewrapped", "current", "gone"]
"""What :meth:`KeyStore.rewrap` did to one key."""


class CryptoError(ValueError):
    """A value or key that does not decrypt or parse. The message names no key material and no plaintext."""


class KeyDestroyed(LookupError):
    """The applicant's data key was destroyed (erasure): their sealed values can never be opened again."""


@dataclass(frozen=True)
class Kek:
    """One key-encryption key: its id (stored beside every key it wraps) and its 32 bytes."""

    kid: str
    key: bytes = field(repr=False)  # never printed


@dataclass(frozen=True)
class KeyRing:
    """The KEKs: ``active`` wraps new data keys; every listed key unwraps."""

    keks: tuple[Kek, ...]

    @property
    def active(self) -> Kek:
        return self.keks[0]

    def by_id(self, kid: str) -> Kek:
        for kek in self.keks:
            if kek.kid == kid:
                return kek
        raise CryptoError(f"unknown key-encryption key id {kid!r}")


def parse_keks(text: str) -> KeyRing:
    """Parse ``kid:base64key[,kid:base64key…]`` (the first is active). Raises :class:`CryptoError` naming the
    problem (never the key) for a malformed entry, a key that is not 32 bytes, or a repeated id."""
    keks: list[Kek] = []
    for n, entry in enumerate(e.strip() for e in text.split(",") if e.strip()):
        kid, sep, encoded = entry.partition(":")
        if not sep or not _KID.match(kid):
            raise CryptoError(f"entry {n + 1}: expected kid:base64key with a kid of [A-Za-z0-9_.-]{{1,32}}")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError(f"key {kid!r} is not base64") from None
        if len(key) != KEY_BYTES:
            raise CryptoError(f"key {kid!r} must be {KEY_BYTES} bytes")
        if any(k.kid == kid for k in keks):
            raise CryptoError(f"key id {kid!r} is listed twice")
        keks.append(Kek(kid, key))
    if not keks:
        raise CryptoError("no key-encryption key given")
    return KeyRing(tuple(keks))


def new_kek_entry(kid: str) -> str:
    """A fresh ``kid:base64key`` entry (for operators and the local stack)."""
    if not _KID.match(kid):
        raise CryptoError("kid must be 1-32 of [A-Za-z0-9_.-]")
    return f"{kid}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytearray:
    """Encrypt ``plaintext`` under ``key`` (AES-256-GCM, random nonce), bound to ``aad``.

    Encrypts into one preallocated buffer (no concatenation): copying a photo-sized result into a new ``bytes``
    costs the process ~10x the encryption itself (fresh pages each time; see ``loadtests/bench_crypto.py``)."""
    out = bytearray(OVERHEAD + len(plaintext))
    seal_into(key, plaintext, aad, memoryview(out))
    return out


def seal_into(key: bytes, plaintext: bytes | memoryview, aad: bytes, out: memoryview) -> None:
    """:func:`seal`, written into ``out``, which must be exactly ``OVERHEAD + len(plaintext)`` bytes (a slice of
    a larger buffer: a record is built in one allocation). Raises ValueError for a wrong size."""
    _seal_into(AESGCM(key), plaintext, aad, out)


def _seal_into(cipher: AESGCM, plaintext: bytes | memoryview, aad: bytes, out: memoryview) -> None:
    """:func:`seal_into` with a cipher already made: the one place the sealed layout is written."""
    if len(out) != OVERHEAD + len(plaintext):
        raise ValueError("output buffer has the wrong size for the sealed value")
    head = _PREFIX.size + NONCE_BYTES
    nonce = os.urandom(NONCE_BYTES)
    _PREFIX.pack_into(out, 0, MAGIC, VERSION)
    out[_PREFIX.size : head] = nonce
    cipher.encrypt_into(nonce, plaintext, aad, out[head:])


def open_sealed(key: bytes, sealed: bytes | bytearray, aad: bytes) -> bytearray:
    """Decrypt what :func:`seal` produced with the same ``key`` and ``aad``; raises :class:`CryptoError`."""
    head = _PREFIX.size + NONCE_BYTES
    if len(sealed) < head + TAG_BYTES:
        raise CryptoError("sealed value too short")
    magic, version = _PREFIX.unpack_from(sealed)
    if magic != MAGIC or version != VERSION:
        raise CryptoError("not a sealed value of a known version")
    view = memoryview(sealed)
    out = bytearray(len(sealed) - head - TAG_BYTES)
    try:
        AESGCM(key).decrypt_into(bytes(view[_PREFIX.size : head]), view[head:], aad, out)
    except InvalidTag:
        raise CryptoError("sealed value does not decrypt (tampered, wrong key or wrong context)") from None
    return out


KEY_PREFIX = "keys/"
"""Prefix of every wrapped data key in the keys bucket."""


def key_id(dek: bytes) -> str:
    """A short public name of a data key (16 hex digits of HMAC-SHA256 keyed by it), stored in the clear header
    of each record sealed with it: it reveals nothing of the key, and tells a record sealed under an applicant's
    earlier key, destroyed by an erasure, from one sealed under their current key."""
    return hmac.new(dek, b"intake-dek-id/v1", hashlib.sha256).hexdigest()[:16]


def key_object(applicant: str) -> str:
    """Object key of an applicant's wrapped data key: the keyed NIK hash (hex), never the NIK."""
    if not _APPLICANT.match(applicant):
        raise ValueError("applicant must be a keyed NIK hash (64 hex digits)")
    return f"{KEY_PREFIX}{applicant}.json"


def applicant_of(object_key: str) -> str | None:
    """The applicant (keyed NIK hash) whose wrapped data key :func:`key_object` stores under ``object_key``;
    None for any other object."""
    stem = object_key.removeprefix(KEY_PREFIX).removesuffix(".json")
    return stem if _APPLICANT.match(stem) and object_key == f"{KEY_PREFIX}{stem}.json" else None


def _wrap_aad(applicant: str, kid: str) -> bytes:
    return f"intake-dek/v1|{applicant}|{kid}".encode()


@functools.lru_cache(maxsize=16)
def _kek_cipher(key: bytes) -> AESGCM:
    """The cipher under a KEK, made once per KEK (a ring holds a few): a wrap then costs one encryption, without a
    cipher's set-up. Kept here, not on :class:`Kek`, which stays a plain value (a cipher cannot be pickled)."""
    return AESGCM(key)


def wrap(ring: KeyRing, applicant: str, dek: bytes) -> bytes:
    """The stored form of ``dek``: JSON with the active KEK's id and the DEK sealed under it (:func:`seal`'s
    layout), ``{"v": 1, "kek": …, "dek": …}`` as ``json.dumps`` writes it. Formatted directly: a new applicant's
    upload wraps one key on the API's event loop, and a kid (``[A-Za-z0-9_.-]``) and base64 need no escaping."""
    kek = ring.active
    sealed = bytearray(OVERHEAD + len(dek))
    _seal_into(_kek_cipher(kek.key), dek, _wrap_aad(applicant, kek.kid), memoryview(sealed))
    return b'{"v": 1, "kek": "%s", "dek": "%s"}' % (kek.kid.encode(), base64.b64encode(sealed))


def wrapped_kek_id(stored: bytes) -> str:
    """The id of the KEK that wrapped a stored key (:func:`wrap`'s output), read without unwrapping it (whether
    it would unwrap is :func:`unwrap`'s business). Raises :class:`CryptoError` when it is not a wrapped key."""
    try:
        data = json.loads(stored)
        kid = data["kek"]
    except (ValueError, KeyError, TypeError):
        raise CryptoError("not a wrapped data key") from None
    if not isinstance(kid, str) or data.get("v") != 1:
        raise CryptoError("not a wrapped data key")
    return kid


def unwrap(ring: KeyRing, applicant: str, stored: bytes) -> tuple[bytes, str]:
    """(DEK, id of the KEK that wrapped it) from :func:`wrap`'s output; raises :class:`CryptoError`."""
    try:
        data = json.loads(stored)
        kid, sealed = str(data["kek"]), base64.b64decode(data["dek"], validate=True)
        if data.get("v") != 1:
            raise CryptoError("unknown wrapped key version")
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise CryptoError("not a wrapped data key") from None
    dek = open_sealed(ring.by_id(kid).key, sealed, _wrap_aad(applicant, kid))
    if len(dek) != KEY_BYTES:
        raise CryptoError("wrapped data key has the wrong length")
    return bytes(dek), kid


class KeyCache:
    """Unwrapped data keys in memory: at most ``max_entries`` (least recently used dropped first), each for at most
    ``ttl_s`` (so a key destroyed by an erasure in another process is forgotten within ``ttl_s``). Not thread-safe:
    one event loop. ``clock`` gives monotonic seconds."""

    def __init__(self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max, self._ttl, self._clock = max_entries, ttl_s, clock
        self._keys: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, applicant: str) -> bytes | None:
        """The applicant's key if held and younger than ``ttl_s``; None otherwise."""
        entry = self._keys.get(applicant)
        if entry is None:
            return None
        if self._clock() - entry[0] >= self._ttl:
            del self._keys[applicant]
            return None
        self._keys.move_to_end(applicant)
        return entry[1]

    def put(self, applicant: str, dek: bytes) -> None:
        """Hold ``dek`` from now on (nothing when ``max_entries`` is 0)."""
        if self._max <= 0:
            return
        self._keys[applicant] = (self._clock(), dek)
        self._keys.move_to_end(applicant)
        while len(self._keys) > self._max:
            self._keys.popitem(last=False)


class KeyStore:
    """Per-applicant data keys, wrapped by the ring's KEKs, in ``bucket`` of an object store. Holds no keys in
    memory between calls (the API keeps a :class:`KeyCache` in front; the consumers read the store every time, so
    an erasure reaches them at once)."""

    def __init__(self, store: ObjectStore, bucket: str, ring: KeyRing) -> None:
        self._store = store
        self._bucket = bucket
        self._ring = ring

    async def get_or_create(self, applicant: str) -> bytes:
        """The applicant's DEK, created on first use. Concurrent callers (any process) get the same key: creation
        is an atomic create-if-absent, and the loser reads the winner's. Raises :class:`KeyDestroyed` only in the
        race where the key is destroyed between the two steps."""
        name = key_object(applicant)
        dek = AESGCM.generate_key(bit_length=256)
        if await self._store.put_if_absent(self._bucket, name, wrap(self._ring, applicant, dek), "application/json"):
            return dek
        existing = await self.get(applicant)
        if existing is None:
            raise KeyDestroyed("the applicant's data key was destroyed")
        return existing

    async def get(self, applicant: str) -> bytes | None:
        """The applicant's DEK, or None if it never existed or was destroyed."""
        stored = await self._store.get(self._bucket, key_object(applicant))
        if stored is None:
            return None
        return unwrap(self._ring, applicant, stored.data)[0]

    async def require(self, applicant: str) -> bytes:
        """The applicant's DEK for decryption; raises :class:`KeyDestroyed` when there is none (erased)."""
        dek = await self.get(applicant)
        if dek is None:
            raise KeyDestroyed("the applicant's data key was destroyed")
        return dek

    async def destroy(self, applicant: str) -> bool:
        """Crypto-shred: delete the applicant's wrapped DEK. True when there was one. Idempotent."""
        name = key_object(applicant)
        existed = await self._store.get(self._bucket, name) is not None
        await self._store.delete(self._bucket, name)
        return existed

    async def rewrap(self, applicant: str) -> Rewrap:
        """Re-wrap the applicant's DEK under the active KEK (rotation; ``intake keys rotate``,
        :mod:`intake.key_rotation`). Returns ``"rewrapped"``; ``"current"`` when it is already under the active
        KEK; ``"gone"`` when there is none, or when it was destroyed (erased) or replaced between the read and the
        write: the write is conditional on the ETag read (``If-Match``), so a rotation racing an erasure never
        brings a destroyed key back. Raises :class:`CryptoError` for a stored key that does not unwrap (an unknown
        KEK id, damaged), RuntimeError when the store gives no ETag."""
        name = key_object(applicant)
        stored = await self._store.get(self._bucket, name)
        if stored is None:
            return "gone"
        dek, kid = unwrap(self._ring, applicant, stored.data)
        if kid == self._ring.active.kid:
            return "current"
        if not stored.etag:  # both stores give one (intake.store_probe.probe_conditional_replace proves it)
            raise RuntimeError("the key store gave no ETag: a rewrap cannot be made conditional")
        rewrapped = wrap(self._ring, applicant, dek)
        if await self._store.put_if_match(self._bucket, name, rewrapped, "application/json", stored.etag):
            return "rewrapped"
        return "gone"
