"""CPU per registration validated: :func:`processors.registration.parse_registration` with the email's plain path
against email-validator alone, on the same registrations, in the same process, alternating.

* ``plain-path``: the API's validation as it runs (:mod:`processors.email_address`: a plain address is checked and
  normalised by one regular expression, anything else by email-validator);
* ``validator``: the same with every address sent to email-validator (how every upload's email was checked before).

The registrations are the load tests' (:func:`loadtests.payloads.fresh_registration`: a fresh applicant each, an
everyday address). Prints µs of CPU per parse for each, per round and the median, and plain-path ÷ validator.

    .venv/bin/python -m loadtests.bench_registration [--registrations 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import time
from collections.abc import Callable
from datetime import date
from typing import Any
from unittest import mock

from loadtests.payloads import fresh_registration
from processors import email_address
from processors.registration import parse_registration


def _cpu_us(registrations: list[dict[str, Any]], on: date) -> float:
    """µs of this process's CPU per :func:`parse_registration` of each of ``registrations``."""
    started = time.process_time()
    for registration in registrations:
        parse_registration(registration, on)
    return (time.process_time() - started) / len(registrations) * 1e6


def _variants() -> dict[str, Callable[[], Any]]:
    """Name -> a context manager under which :func:`parse_registration` runs that way."""
    return {
        "plain-path": contextlib.nullcontext,
        "validator": lambda: mock.patch.object(email_address, "plain_email", return_value=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registrations", type=int, default=2000, help="registrations parsed per variant and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alternating the order of the variants")
    args = parser.parse_args()
    rng = random.Random(14)
    registrations = [fresh_registration(rng) for _ in range(args.registrations)]
    on = date.today()
    variants = _variants()
    figures: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in order:
            with variants[name]():
                _cpu_us(registrations[:100], on)  # warm
                figures[name].append(_cpu_us(registrations, on))
        print(f"round {round_}: " + ", ".join(f"{n} {figures[n][-1]:.1f} µs" for n in variants))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print(f"\nµs CPU per registration validated, median of {args.rounds} rounds of {args.registrations}:")
    for name, value in medians.items():
        print(f"| {name} | {value:.1f} |")
    print(f"plain-path ÷ validator: {medians['plain-path'] / medians['validator']:.2f}")


if __name__ == "__main__":
    main()
