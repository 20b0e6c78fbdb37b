"""The one table of outcome codes: what the caller does, the HTTP status, and the applicant's message.

Every error or rejection the service reports carries a stable, machine-readable ``code`` from this table.
Codes are grouped by what the caller should do about them (:class:`Category`):

* ``RETRYABLE``: nothing is wrong with the input; try again later (honour ``Retry-After``).
* ``REJECTED``: the input cannot be accepted as it is; the message tells the applicant what to fix.
* ``BUG``: our fault; the request may be retried, and an engineer is alerted.

The HTTP status is an integer here so that this module stays free of any HTTP library; the edges
(``ingest/``) map it onto responses. Codes are also the only values used as metric labels for reasons,
so the label set is bounded by this table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Category(enum.Enum):
    """What the caller should do about an outcome."""

    RETRYABLE = "retryable"
    REJECTED = "rejected"
    BUG = "bug"


@dataclass(frozen=True, slots=True)
class Reason:
    """One row of the table: a stable code with its category, HTTP status and messages."""

    code: str
    category: Category
    http_status: int
    message_id: str
    """Message for the applicant in Bahasa Indonesia."""
    message_en: str
    """The same message in English."""


def _r(code: str, category: Category, status: int, message_id: str, message_en: str) -> Reason:
    return Reason(code, category, status, message_id, message_en)


_RETRY = Category.RETRYABLE
_REJ = Category.REJECTED
_BUG = Category.BUG

_TABLE: tuple[Reason, ...] = (
    # --- The request itself (ingest edge) ---------------------------------------------------------------
    _r("body_too_large", _REJ, 413, "Ukuran kiriman terlalu besar.", "The request body is too large."),
    _r(
        "unsupported_media_type",
        _REJ,
        415,
        "Jenis konten tidak didukung; gunakan multipart/form-data.",
        "Unsupported content type; use multipart/form-data.",
    ),
    _r(
        "expectation_failed",
        _REJ,
        417,
        "Header Expect tidak didukung; gunakan 100-continue atau kirim tanpa Expect.",
        "Unsupported Expect header; use 100-continue or send without Expect.",
    ),
    _r("malformed_multipart", _REJ, 400, "Format kiriman tidak dapat dibaca.", "The multipart body is malformed."),
    _r("missing_part", _REJ, 400, "Bagian kiriman yang wajib tidak ada.", "A required part of the request is missing."),
    _r(
        "invalid_json", _REJ, 400, "Data pendaftaran bukan JSON yang valid.", "The registration data is not valid JSON."
    ),
    _r(
        "validation_failed",
        _REJ,
        422,
        "Sebagian data pendaftaran tidak valid.",
        "Some registration fields are invalid.",
    ),
    _r(
        "request_timeout",
        _REJ,
        408,
        "Kiriman terlalu lambat; silakan coba lagi.",
        "The request was too slow; please try again.",
    ),
    _r("unauthorized", _REJ, 401, "Akses ditolak.", "Access denied."),
    _r(
        "signature_expired",
        _REJ,
        401,
        "Tanda tangan permintaan sudah kedaluwarsa; muat ulang halaman dan kirim lagi.",
        "The request signature has expired; reload the page and send again.",
    ),
    _r(
        "request_replayed",
        _REJ,
        401,
        "Permintaan ini sudah pernah dikirim; muat ulang halaman dan kirim lagi.",
        "This request was already sent; reload the page and send again.",
    ),
    _r("forbidden", _REJ, 403, "Anda tidak berwenang untuk tindakan ini.", "You are not allowed to do this."),
    _r(
        "actor_required",
        _REJ,
        400,
        "Nama petugas (Intake-Actor) wajib disertakan.",
        "The operator (Intake-Actor header) must be named.",
    ),
    _r(
        "origin_not_allowed",
        _REJ,
        403,
        "Situs asal permintaan tidak diizinkan.",
        "Requests from this site are not allowed.",
    ),
    _r(
        "audit_unavailable",
        _RETRY,
        503,
        "Pencatatan akses sedang tidak tersedia; silakan coba lagi.",
        "The access log is unavailable; please try again.",
    ),
    _r("not_found", _REJ, 404, "Data tidak ditemukan.", "Not found."),
    _r("method_not_allowed", _REJ, 405, "Metode tidak diizinkan.", "Method not allowed."),
    _r("idempotency_key_invalid", _REJ, 400, "Idempotency-Key tidak valid.", "The Idempotency-Key header is invalid."),
    _r(
        "overloaded",
        _RETRY,
        503,
        "Server sedang sibuk; silakan coba lagi sebentar lagi.",
        "The service is busy; please try again shortly.",
    ),
    _r(
        "starting",
        _RETRY,
        503,
        "Layanan sedang dimulai; silakan coba lagi sebentar lagi.",
        "The service is starting; please try again shortly.",
    ),
    _r(
        "rate_limited",
        _RETRY,
        429,
        "Terlalu banyak permintaan; silakan tunggu sebentar.",
        "Too many requests; please wait a moment.",
    ),
    _r(
        "queue_unavailable",
        _RETRY,
        503,
        "Layanan antrean sedang sibuk; kiriman Anda belum dapat dikonfirmasi. Silakan kirim ulang.",
        "The queue is unavailable; your submission could not be confirmed. Please send it again.",
    ),
    _r(
        "storage_unavailable",
        _RETRY,
        503,
        "Penyimpanan sedang tidak tersedia; silakan coba lagi.",
        "Storage is unavailable; please try again.",
    ),
    _r("internal_error", _BUG, 500, "Terjadi kesalahan pada sistem kami.", "Something went wrong on our side."),
    # --- KTP photo --------------------------------------------------------------------------------------
    _r("photo_empty", _REJ, 422, "Foto KTP kosong.", "The KTP photo is empty."),
    _r("photo_too_large", _REJ, 413, "Ukuran file foto KTP terlalu besar.", "The KTP photo file is too large."),
    _r("not_an_image", _REJ, 422, "File yang dikirim bukan foto.", "The file is not an image."),
    _r(
        "unsupported_format",
        _REJ,
        422,
        "Format foto tidak didukung; gunakan JPEG, PNG atau WebP.",
        "Unsupported photo format; use JPEG, PNG or WebP.",
    ),
    _r(
        "image_corrupt",
        _REJ,
        422,
        "File foto rusak atau tidak lengkap; silakan unggah ulang.",
        "The photo file is corrupt or incomplete; please upload it again.",
    ),
    _r("too_many_pixels", _REJ, 422, "Resolusi foto terlalu besar.", "The photo has too many pixels."),
    _r(
        "image_too_small",
        _REJ,
        422,
        "Foto terlalu kecil; ambil foto dengan resolusi lebih tinggi.",
        "The photo is too small; take it at a higher resolution.",
    ),
    _r("animated_image", _REJ, 422, "Foto bergerak (animasi) tidak diterima.", "Animated images are not accepted."),
    _r(
        "card_not_found",
        _REJ,
        422,
        "KTP tidak terlihat utuh di foto; foto seluruh kartu di atas latar polos.",
        "The KTP card was not found; photograph the whole card on a plain background.",
    ),
    _r(
        "card_too_small",
        _REJ,
        422,
        "KTP terlalu kecil di foto; dekatkan kamera.",
        "The card is too small in the photo; move the camera closer.",
    ),
    _r(
        "card_cut_off",
        _REJ,
        422,
        "Sebagian KTP terpotong; pastikan seluruh kartu, sampai keempat sudutnya, masuk dalam foto.",
        "Part of the KTP is cut off; make sure the whole card, all four corners, is in the photo.",
    ),
    _r(
        "multiple_cards",
        _REJ,
        422,
        "Ada lebih dari satu kartu di foto; foto hanya KTP Anda sendiri.",
        "There is more than one card in the photo; photograph only your own KTP.",
    ),
    _r(
        "card_back_side",
        _REJ,
        422,
        "Yang terfoto adalah bagian belakang KTP; foto bagian depan yang memuat NIK dan pas foto.",
        "This is the back of the KTP; photograph the front, with the NIK and the photo.",
    ),
    _r(
        "blurry",
        _REJ,
        422,
        "Foto KTP buram; pastikan fokus dan tangan tidak bergerak.",
        "The KTP photo is blurry; hold steady and make sure it is in focus.",
    ),
    _r(
        "glare",
        _REJ,
        422,
        "Ada pantulan cahaya pada KTP; hindari lampu atau blitz langsung.",
        "There is glare on the card; avoid direct light or flash.",
    ),
    _r(
        "too_dark",
        _REJ,
        422,
        "Foto KTP terlalu gelap; ambil foto di tempat yang lebih terang.",
        "The KTP photo is too dark; take it in better light.",
    ),
    _r("too_bright", _REJ, 422, "Foto KTP terlalu terang.", "The KTP photo is overexposed."),
    # --- Registration and NIK ---------------------------------------------------------------------------
    _r("nik_invalid", _REJ, 422, "NIK tidak valid.", "The NIK is not valid."),
    _r(
        "nik_province_invalid",
        _REJ,
        422,
        "NIK tidak valid: kode provinsi tidak dikenal.",
        "The NIK is not valid: unknown province code.",
    ),
    _r(
        "nik_region_invalid",
        _REJ,
        422,
        "NIK tidak valid: kode kabupaten/kota atau kecamatan tidak dikenal.",
        "The NIK is not valid: implausible regency or district code.",
    ),
    _r(
        "nik_birth_date_mismatch",
        _REJ,
        422,
        "Tanggal lahir tidak sesuai dengan NIK.",
        "The birth date does not match the NIK.",
    ),
    _r(
        "under_age",
        _REJ,
        422,
        "Usia Anda belum 18 tahun pada tanggal pembukaan gelombang.",
        "You are under 18 on the wave's opening date.",
    ),
    _r(
        "duplicate_registration",
        _REJ,
        409,
        "NIK ini sudah terdaftar di gelombang ini.",
        "This NIK is already registered in this wave.",
    ),
    _r(
        "wave_not_open",
        _REJ,
        409,
        "Gelombang pendaftaran ini belum dibuka atau sudah ditutup.",
        "This registration wave is not open.",
    ),
    _r(
        "quota_exceeded",
        _REJ,
        200,
        "Kuota gelombang sudah penuh; Anda belum terpilih di gelombang ini.",
        "The wave's quota is full; you were not selected in this wave.",
    ),
    # --- Screening: "your NIK is listed in registry X" -------------------------------------------------
    _r(
        "registry_asn",
        _REJ,
        200,
        "NIK Anda tercatat sebagai ASN (Aparatur Sipil Negara).",
        "Your NIK is listed as a civil servant (ASN).",
    ),
    _r(
        "registry_tni",
        _REJ,
        200,
        "NIK Anda tercatat sebagai anggota TNI.",
        "Your NIK is listed as a member of the TNI.",
    ),
    _r(
        "registry_polri",
        _REJ,
        200,
        "NIK Anda tercatat sebagai anggota Polri.",
        "Your NIK is listed as a member of Polri.",
    ),
    _r("registry_dprd", _REJ, 200, "NIK Anda tercatat sebagai anggota DPRD.", "Your NIK is listed as a DPRD member."),
    _r(
        "registry_village_official",
        _REJ,
        200,
        "NIK Anda tercatat sebagai kepala desa atau perangkat desa.",
        "Your NIK is listed as a village head or village official.",
    ),
    _r(
        "registry_enterprise_board",
        _REJ,
        200,
        "NIK Anda tercatat sebagai direksi/komisaris/dewan pengawas BUMN atau BUMD.",
        "Your NIK is listed on the board of a state or regional enterprise (BUMN/BUMD).",
    ),
    _r(
        "registry_bsu",
        _REJ,
        200,
        "NIK Anda tercatat sebagai penerima Bantuan Subsidi Upah (BSU).",
        "Your NIK is listed as a recipient of the wage subsidy (BSU).",
    ),
    _r(
        "registry_bpum",
        _REJ,
        200,
        "NIK Anda tercatat sebagai penerima Banpres Produktif Usaha Mikro (BPUM).",
        "Your NIK is listed as a recipient of the micro-business grant (BPUM).",
    ),
    _r(
        "registry_bansos",
        _REJ,
        200,
        "NIK Anda tercatat sebagai penerima bantuan sosial lain.",
        "Your NIK is listed as a recipient of other social assistance.",
    ),
    _r(
        "registry_prakerja",
        _REJ,
        200,
        "NIK Anda tercatat sebagai penerima Kartu Prakerja sebelumnya.",
        "Your NIK is listed as an earlier Kartu Prakerja recipient.",
    ),
    _r(
        "registry_dapodik",
        _REJ,
        200,
        "NIK Anda tercatat sebagai peserta didik aktif (Dapodik).",
        "Your NIK is listed as an active school student (Dapodik).",
    ),
    _r(
        "registry_pddikti",
        _REJ,
        200,
        "NIK Anda tercatat sebagai mahasiswa aktif (PDDikti).",
        "Your NIK is listed as an active university student (PDDikti).",
    ),
    _r(
        "registry_foreign_national",
        _REJ,
        200,
        "NIK Anda tercatat sebagai warga negara asing.",
        "Your NIK is listed as a foreign national.",
    ),
)

REASONS: dict[str, Reason] = {r.code: r for r in _TABLE}
"""Every known code, by code. Lookups of unknown codes are bugs: use :func:`reason`."""

if len(REASONS) != len(_TABLE):  # pragma: no cover - guards the table at import time
    raise RuntimeError("duplicate code in processors.reasons table")


def reason(code: str) -> Reason:
    """Return the row for ``code``. Raises ``KeyError`` for an unknown code (a bug, never user input)."""
    return REASONS[code]


class Rejected(Exception):
    """A typed rejection of input, raised by processors.

    ``code`` is a key of :data:`REASONS` (an unknown code raises ``KeyError`` at construction: a bug);
    ``measured`` and ``threshold`` carry the value that failed and the limit it was compared with (for
    example a blur score), never personal data. ``detail`` holds further bounded, non-personal facts
    (for example per-field errors of a registration).
    """

    def __init__(
        self,
        code: str,
        measured: float | int | str | None = None,
        threshold: float | int | str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        if code not in REASONS:
            raise KeyError(f"unknown reason code {code!r}")
        super().__init__(code, measured, threshold)
        self.code = code
        self.measured = measured
        self.threshold = threshold
        self.detail: dict[str, Any] = dict(detail or {})

    @property
    def reason(self) -> Reason:
        """The table row for this rejection's code."""
        return REASONS[self.code]

    def __str__(self) -> str:
        return f"{self.code} (measured={self.measured!r}, threshold={self.threshold!r})"
