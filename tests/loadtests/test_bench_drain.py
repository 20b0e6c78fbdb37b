"""The drain benchmark's records are what the API appends, and its figures come out of the outcomes as documented
(no broker, no timing asserted)."""

from __future__ import annotations

import argparse
import json
import math
import random

import pytest

from consumers.pipeline import Outcome
from intake.envelope import Submission, decode
from loadtests.bench_drain import (
    cpu_at,
    drain_figures,
    parse_outcome,
    ratios,
    submission_record,
    uploads,
    worker_counts,
)
from loadtests.payloads import fresh_registration
from processors.screening import nik_hash
from tests.support import TEST_PEPPER, unit_settings


def test_record_is_the_apis_envelope_keyed_by_the_nik_hash() -> None:
    settings = unit_settings()
    raw = fresh_registration(random.Random(5), settings.wave.number)
    key, value = submission_record(settings, raw, b"\xff\xd8JPEG")
    sub = decode(value)
    assert isinstance(sub, Submission)  # plaintext (version 1): the drain bench does not seal
    assert key == nik_hash(raw["nik"], TEST_PEPPER.encode()).hex().encode() == sub.nik_hash.encode()
    assert sub.photo == b"\xff\xd8JPEG"
    assert sub.client_id == "load"
    assert sub.registration["wave"] == settings.wave.number
    assert len(sub.submission_id) == 26
    assert submission_record(settings, raw, b"x")[0] == key  # same applicant, same key and partition


def test_uploads_are_the_same_for_the_same_seed() -> None:
    first, again, other = uploads("mix", 50, 7, 1), uploads("mix", 50, 7, 1), uploads("mix", 50, 8, 1)
    assert first == again != other
    assert {label for _, label, _ in uploads("3m", 10, 7, 1)} == {"3m"}
    assert len({raw["nik"] for raw, _, _ in first}) == 50


def test_figures_count_each_submission_once_and_exclude_start_up() -> None:
    published = [(Outcome(f"s{i}", "eligible", None), 100.0 + i) for i in range(11)]
    published.append((Outcome("s3", "eligible", None), 120.0))  # a redelivery, published again later
    published.append((Outcome("r", "rejected", "blurry"), 105.5))
    d = drain_figures(2, 98.0, published)
    assert (d.photos, d.first, d.last) == (12, 100.0, 110.0)
    assert d.per_s == pytest.approx(11 / 10)
    assert d.from_start_per_s == pytest.approx(12 / 12)
    assert d.start_up_s == pytest.approx(2.0)
    assert d.states == {"eligible": 11, "rejected:blurry": 1}
    empty = drain_figures(1, 98.0, [])
    assert empty.photos == 0 and math.isnan(empty.per_s) and math.isnan(empty.from_start_per_s)


def test_ratios_are_over_the_first_worker_count() -> None:
    one = drain_figures(1, 0.0, [(Outcome(f"s{i}", "eligible", None), 1.0 + i) for i in range(11)])
    two = drain_figures(2, 0.0, [(Outcome(f"s{i}", "eligible", None), 1.0 + i / 2) for i in range(11)])
    got = ratios([one, two, two])
    assert got[1] == (1.0, 1.0)
    assert got[2][0] == pytest.approx(2.0)
    assert got[2][1] == pytest.approx((11 / 6) / (11 / 11))
    assert ratios([]) == {}


def test_outcome_record_and_worker_counts() -> None:
    body = {"submission_id": "abc", "state": "rejected", "reason": "blurry", "updated_at": "2026-11-28T00:00:00"}
    assert parse_outcome(json.dumps(body).encode()) == Outcome("abc", "rejected", "blurry")
    assert worker_counts("1,2") == [1, 2]
    for bad in ("0,2", "a", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            worker_counts(bad)


def test_cpu_at_interpolates_between_samples() -> None:
    samples = [(10.0, 1.0), (11.0, 2.0), (13.0, 2.5)]
    assert cpu_at(samples, 10.5) == pytest.approx(1.5)
    assert cpu_at(samples, 12.0) == pytest.approx(2.25)
    assert math.isnan(cpu_at(samples, 14.0))
