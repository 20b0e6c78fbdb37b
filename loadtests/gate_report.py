"""How the photo gate judges the labelled corpus of real-world uploads (a report, not a test).

Run from the repository root: ``OMP_NUM_THREADS=1 .venv/bin/python -m loadtests.gate_report [--cases]``. Every
case of :mod:`tests.corpus.uploads` goes through :func:`processors.photo.normalise_photo` with the default
:class:`~processors.photo.PhotoPolicy`; the report prints the confusion matrix of the expected reason (rows,
``accept`` for a good photo) against the given one (columns), the false-reject rate of the good photos, the
false accepts, and the rejections whose reason is not even of the expected family (:data:`uploads.FAMILIES`:
light, flash, focus, framing, the card itself). ``--cases`` adds one line per case with the evidence.

Targets (issue 16): false rejects <= 1 % of the good photos, and every rejection's reason of the expected
family. The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass

from processors.photo import PhotoPolicy
from processors.photo.pipeline import normalise_photo
from processors.reasons import Rejected
from tests.corpus import uploads

ACCEPTED = "accept"
FALSE_REJECT_TARGET = 0.01


@dataclass(frozen=True)
class Outcome:
    """What the gate gave for one case: the code (``accept`` for an accepted photo) and its evidence."""

    case: uploads.Case
    given: str
    evidence: str
    cpu_s: float

    @property
    def expected(self) -> str:
        """The expected code, ``accept`` for a good photo."""
        return self.case.reason or ACCEPTED


def judge(case: uploads.Case, policy: PhotoPolicy) -> Outcome:
    """Run the gate on ``case`` and record its verdict, evidence and CPU time."""
    data = uploads.photo(case.name)
    start = time.process_time()
    try:
        result = normalise_photo(data, policy)
    except Rejected as exc:
        return Outcome(
            case, exc.code, f"measured={exc.measured} threshold={exc.threshold}", time.process_time() - start
        )
    q = result.quality
    evidence = f"confidence={q['confidence']} width={q['card_width_px']} blur={q['blur']}"
    return Outcome(case, ACCEPTED, evidence, time.process_time() - start)


def matrix(outcomes: list[Outcome]) -> str:
    """The confusion matrix as text: expected codes down, given codes across, counts in the cells."""
    rows = sorted({o.expected for o in outcomes}, key=lambda c: (c != ACCEPTED, c))
    cols = sorted({o.given for o in outcomes} | set(rows), key=lambda c: (c != ACCEPTED, c))
    counts = Counter((o.expected, o.given) for o in outcomes)
    width = max(len(c) for c in rows + cols) + 1
    lines = ["expected \\ given".ljust(width) + "".join(c[:14].rjust(15) for c in cols)]
    for r in rows:
        lines.append(r.ljust(width) + "".join((str(counts[(r, c)]) if counts[(r, c)] else ".").rjust(15) for c in cols))
    return "\n".join(lines)


def main() -> None:
    """Print the report; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", action="store_true", help="also print every case with its evidence")
    args = parser.parse_args()
    policy = PhotoPolicy()
    outcomes = [judge(case, policy) for case in uploads.CASES]
    if args.cases:
        for o in outcomes:
            mark = "ok " if o.given == o.expected else "!! "
            print(
                f"{mark}{o.case.name:26s} {o.case.kind:7s} expected {o.expected:15s} given {o.given:15s} {o.evidence}"
            )
        print()
    print(matrix(outcomes))
    goods = [o for o in outcomes if o.expected == ACCEPTED]
    bads = [o for o in outcomes if o.expected != ACCEPTED]
    false_rejects = [o for o in goods if o.given != ACCEPTED]
    false_accepts = [o for o in bads if o.given == ACCEPTED]
    off_family = [o for o in bads if o.given != ACCEPTED and uploads.family(o.given) != uploads.family(o.expected)]
    exact = sum(o.given == o.expected for o in outcomes)
    rate = len(false_rejects) / max(1, len(goods))
    print(
        f"\n{len(outcomes)} cases, {exact} verdicts and reasons exactly as expected; "
        f"good photos {len(goods)}: false rejects {len(false_rejects)} ({rate:.1%}, target <= 1%); "
        f"bad photos {len(bads)}: false accepts {len(false_accepts)}, reason of another family {len(off_family)}; "
        f"gate CPU per photo: median {sorted(o.cpu_s for o in outcomes)[len(outcomes) // 2] * 1e3:.0f} ms"
    )
    for o in false_rejects + false_accepts + off_family:
        print(f"  {o.case.name}: expected {o.expected}, given {o.given} ({o.evidence})")
    if rate > FALSE_REJECT_TARGET or off_family or false_accepts:
        sys.exit(1)


if __name__ == "__main__":
    main()
