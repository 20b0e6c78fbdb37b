"""Exporting a closed wave's selected applicants for the programme, ``intake waves export N``.

:func:`export_wave` reads the wave's stored selection (``waves/wave-<n>/selection.json``, written by
``intake waves close``; the close must have finished: ``done.json``) and, in rank order, each selected
submission's registration record from the registrations bucket, and writes one row per applicant: JSONL (the
registration record of ``schemas/registration-record.v1.json`` with state ``selected``) or CSV
(:data:`intake.registration_record.CSV_COLUMNS`, with a header line).

* **Streaming, bounded memory:** records are read ``INTAKE_EXPORT_WINDOW`` at a time (concurrently) and written
  before the next window is read; only the selection's ids (bounded by the quota) are held in full.
* **Resumable:** after each window the output is flushed and fsynced, then a checkpoint beside it
  (``<output>.checkpoint``: the next rank and the output's length) is replaced atomically. A run that finds a
  checkpoint for the same wave, format and selection truncates the output to that length and goes on from that
  rank; without one it starts afresh. The checkpoint is removed when the export is complete.
* A selected submission whose registration record is gone was erased on request (its status is ``erased``): it
  is left out and counted. One whose record is missing otherwise is counted as ``missing`` (the command then
  fails): nothing is silently dropped.

Storage errors propagate (re-run to resume).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from consumers.selection import Selection, done_key, selection_key
from intake.registration_record import CSV_COLUMNS, RegistrationRecord, registration_key
from intake.settings import Settings
from intake.status import StatusRecord, status_key
from intake.storage import ObjectStore

FORMATS = ("jsonl", "csv")


class WaveNotClosed(Exception):
    """The wave has no finished close yet; nothing was written."""


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote. Counts cover the whole export, including the part done before a resume."""

    wave: int
    format: str
    selected: int
    written: int
    erased: int
    missing: int
    resumed_at: int
    """The rank the run started from (0 unless it resumed)."""


@dataclass
class _Checkpoint:
    wave: int
    format: str
    selection_created_at: str
    next_rank: int
    output_bytes: int
    written: int
    erased: int
    missing: int


def checkpoint_path(output: Path) -> Path:
    """Where the checkpoint of an export to ``output`` lives: beside it."""
    return output.with_name(output.name + ".checkpoint")


def _load_checkpoint(path: Path, wave: int, fmt: str, selection: Selection) -> _Checkpoint | None:
    try:
        data = json.loads(path.read_bytes())
        cp = _Checkpoint(**data)
    except (OSError, ValueError, TypeError):
        return None
    if (cp.wave, cp.format, cp.selection_created_at) != (wave, fmt, selection.created_at):
        return None
    return cp


def _save_checkpoint(path: Path, cp: _Checkpoint) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(cp)))
    os.replace(tmp, path)


def _open_output(
    output: Path, cp: _Checkpoint | None, wave: int, fmt: str, selection: Selection
) -> tuple[BinaryIO, _Checkpoint]:
    """Resume at the checkpoint (the output cut back to its length), or start afresh (with the CSV header)."""
    if cp is not None and output.exists() and output.stat().st_size >= cp.output_bytes:
        out: BinaryIO = output.open("r+b")
        out.truncate(cp.output_bytes)
        out.seek(cp.output_bytes)
        return out, cp
    out = output.open("wb")
    if fmt == "csv":
        out.write(_csv_line(CSV_COLUMNS))
    return out, _Checkpoint(wave, fmt, selection.created_at, 0, out.tell(), 0, 0, 0)


def _csv_line(values: list[str] | tuple[str, ...]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue().encode()


async def _selection(settings: Settings, store: ObjectStore, wave: int) -> Selection:
    bucket = settings.s3.bucket_status
    if await store.get(bucket, done_key(wave)) is None:
        raise WaveNotClosed(f"wave {wave} has not been closed (run `intake waves close {wave}` first)")
    stored = await store.get(bucket, selection_key(wave))
    if stored is None:
        raise WaveNotClosed(f"wave {wave} has no stored selection")
    return Selection.from_json(stored.data)


async def _read(settings: Settings, store: ObjectStore, submission_id: str) -> RegistrationRecord | str:
    """The record, or why there is none: ``erased`` or ``missing``."""
    stored = await store.get(settings.s3.bucket_registrations, registration_key(submission_id))
    if stored is not None:
        return RegistrationRecord.from_json(stored.data)
    status = await store.get(settings.s3.bucket_status, status_key(submission_id))
    if status is not None and StatusRecord.from_json(status.data).state == "erased":
        return "erased"
    return "missing"


async def export_wave(
    settings: Settings,
    store: ObjectStore,
    wave: int,
    output: Path,
    *,
    fmt: str = "jsonl",
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    """Export wave ``wave``'s selected applicants to ``output`` (see the module docstring). Raises
    :class:`WaveNotClosed` before the wave's close finished; ``progress`` is called with the ranks done."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    selection = await _selection(settings, store, wave)
    ids = selection.selected
    cp_path = checkpoint_path(output)
    out, cp = _open_output(output, _load_checkpoint(cp_path, wave, fmt, selection), wave, fmt, selection)
    resumed_at = cp.next_rank
    window = settings.wave.export_window
    try:
        if progress is not None:
            progress(cp.next_rank)
        while cp.next_rank < len(ids):
            chunk = ids[cp.next_rank : cp.next_rank + window]
            found = await asyncio.gather(*(_read(settings, store, sid) for sid in chunk))
            for item in found:
                if item == "erased":
                    cp.erased += 1
                elif item == "missing":
                    cp.missing += 1
                elif isinstance(item, RegistrationRecord):
                    row = item.with_state("selected")
                    out.write(row.to_json() + b"\n" if fmt == "jsonl" else _csv_line(row.csv_row()))
                    cp.written += 1
            out.flush()
            os.fsync(out.fileno())
            cp.next_rank += len(chunk)
            cp.output_bytes = out.tell()
            _save_checkpoint(cp_path, cp)
            if progress is not None:
                progress(cp.next_rank)
    finally:
        out.close()
    cp_path.unlink(missing_ok=True)
    return ExportSummary(wave, fmt, len(ids), cp.written, cp.erased, cp.missing, resumed_at)
