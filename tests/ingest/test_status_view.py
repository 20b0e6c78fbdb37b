"""The in-memory status view: compression round trip, the bound, removals, metrics."""

from __future__ import annotations

import json

from ingest.status_read import status_body
from ingest.status_view import StatusView
from intake.metrics import build_metrics
from intake.status import StatusRecord


def _record(sid: str, state: str = "eligible", **kw: object) -> StatusRecord:
    facts = {"width": 1600, "height": 1200, "sha256": "ab" * 32, "wave": 1, "quality": {"blur": 301.2}}
    return StatusRecord(sid, state, "2026-11-30T23:00:00+00:00", facts=facts, **kw)  # type: ignore[arg-type]


def _sid(i: int) -> str:
    return f"{i:026d}".translate(str.maketrans("0123456789", "abcdefghij"))


def test_round_trip_and_replacement() -> None:
    view = StatusView(10)
    first = _record(_sid(1))
    view.apply(_sid(1).encode(), first.to_json())
    assert view.get(_sid(1)) == first
    rejected = StatusRecord(_sid(1), "rejected", "2026-11-30T23:01:00+00:00", reason="blurry", measured=1.5)
    view.apply(_sid(1).encode(), rejected.to_json())
    assert view.get(_sid(1)) == rejected and len(view) == 1
    assert view.get(_sid(2)) is None


def test_entries_are_compressed() -> None:
    view = StatusView(10)
    raw = _record(_sid(3)).to_json()
    view.apply(_sid(3).encode(), raw)
    assert len(view._entries[_sid(3).encode()]) < len(raw) / 2


def test_bound_drops_the_oldest_update() -> None:
    view = StatusView(3)
    for i in range(3):
        view.apply(_sid(i).encode(), _record(_sid(i)).to_json())
    view.apply(_sid(0).encode(), _record(_sid(0), "erased").to_json())  # an update makes it the newest
    view.apply(_sid(9).encode(), _record(_sid(9)).to_json())
    assert len(view) == 3 and view.evicted == 1
    assert view.get(_sid(1)) is None  # the oldest update went
    assert view.get(_sid(0)) is not None and view.get(_sid(9)) is not None


def test_null_value_removes_and_bad_records_read_as_missing() -> None:
    view = StatusView(5)
    view.apply(_sid(4).encode(), _record(_sid(4)).to_json())
    view.apply(_sid(4).encode(), None)
    assert view.get(_sid(4)) is None and len(view) == 0
    view.apply(None, b"ignored")
    view.apply(_sid(5).encode(), b'{"state": "no such state"}')
    assert view.get(_sid(5)) is None  # the object store answers instead


def test_metrics() -> None:
    metrics = build_metrics()
    view = StatusView(1, metrics)
    view.apply(_sid(6).encode(), _record(_sid(6)).to_json())
    view.apply(_sid(7).encode(), _record(_sid(7)).to_json())
    view.mark_caught_up()
    view.report()
    text = metrics.render().decode()
    assert "intake_status_view_entries 1.0" in text
    assert "intake_status_view_evicted 1.0" in text
    assert "intake_status_view_caught_up 1.0" in text


def test_memoised_answers_keep_the_record() -> None:
    """An answer rendered from the view replaces the record; the record can still be read back from it."""
    view = StatusView(5)
    for record in (
        _record(_sid(8)),
        StatusRecord(_sid(8), "rejected", "2026-11-30T23:01:00+00:00", reason="glare", measured=0.2, threshold=0.03),
        StatusRecord(_sid(8), "selected", "2026-12-30T23:01:00+00:00", objects={"card": "ktp/x/card.jpg"}),
    ):
        view.apply(_sid(8).encode(), record.to_json())
        assert view.rendered(_sid(8)) is None
        final = record.state != "eligible"
        raw = json.dumps(status_body(record, _sid(8), 10), sort_keys=True).encode()
        view.remember(_sid(8), '"' + "0" * 32 + '"', final, raw)
        memo = view.rendered(_sid(8))
        assert memo is not None and memo.final is final and view.body(memo.packed) == raw
        assert view.get(_sid(8)) == record
    view.remember(_sid(9), '"' + "0" * 32 + '"', True, b"{}")  # not held: nothing is added
    assert view.rendered(_sid(9)) is None and len(view) == 1
