"""The open-loop generator in Go: the same load as :mod:`loadtests.openloop`, offered by compiled code.

One Python process saturates a core at a few hundred 0.5 MB uploads per second, so on a 2-core machine it could
not offer 10× the API's sustainable rate, and at 250 % it launched late (the benchmark flagged those phases
"generator saturated"). This module plans the same requests in Python (fresh applicants, bodies, Idempotency-Keys,
source addresses and signatures: one implementation of each, shared with :mod:`loadtests.openloop`), hands the
plan to ``loadtests/gogen/main.go`` (standard library only), which sends each request at its due time on a
connection of its own (each applicant's browser opens its own) while reading the answer, and classifies what
came back with :func:`loadtests.outcomes.classify`. Same command line, same outcomes CSV and the same closing line
as :mod:`loadtests.openloop`, so ``loadtests.bench --generator go`` swaps one for the other.

* Each request is signed for the second it is due (the API allows ``INTAKE_AUTH_MAX_SKEW_S`` either way), so a
  plan made before a long run stays valid.
* The binary is built with the machine's ``go`` (the one ``deploy/local/stack.sh`` builds MinIO with) into
  ``$INTAKE_CACHE_DIR/gogen-<hash of its sources>/`` (default ``~/.cache/prakerja-intake``), once per source
  change; :func:`build` raises ``SystemExit`` with a hint when ``go`` is missing.
* Bodies are not copied per request: the plan names each body's head (the registration part), one of the cached
  photo files (:func:`loadtests.payloads.photo_files`) and the common tail, and the binary writes the three with
  one ``writev``.

CLI: ``.venv/bin/python -m loadtests.gogen --url http://127.0.0.1:8080 --rate 1000 --duration 10 --photos 500k
--out reports/ol.csv`` (the options of :mod:`loadtests.openloop`).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import random
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from intake.auth import ClientKey
from loadtests import outcomes
from loadtests.openloop import arguments, check_loopback, offsets_of, request_headers, summary_line
from loadtests.payloads import BodyFactory, fresh_registration, parse_classes, photo_files, pick_class
from loadtests.signing import load_key

SOURCE = Path(__file__).resolve().parent / "gogen"
"""The Go module of the generator (``main.go``, ``go.mod``)."""
RESULT_COLUMNS = ["start", "latency_ms", "status", "error", "label", "bytes", "answer"]
"""What the binary writes per request (see ``main.go``)."""


def binary_path() -> Path:
    """Where the binary built from the current sources is cached: ``$INTAKE_CACHE_DIR`` (as
    ``deploy/local/stack.sh``; default ``${XDG_CACHE_HOME:-~/.cache}/prakerja-intake``)."""
    digest = hashlib.sha256()
    for name in ("go.mod", "main.go"):
        digest.update((SOURCE / name).read_bytes())
    cache = os.environ.get("INTAKE_CACHE_DIR")
    base = (
        Path(cache) if cache else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "prakerja-intake"
    )
    return base / f"gogen-{digest.hexdigest()[:16]}" / "gogen"


def build() -> Path:
    """The generator's binary, built with ``go build`` when missing (a few seconds). Raises ``SystemExit`` when
    ``go`` is not installed or the build fails."""
    path = binary_path()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"gogen.{os.getpid()}.tmp")
    try:
        subprocess.run(
            ["go", "build", "-trimpath", "-o", str(tmp), "."],
            cwd=SOURCE,
            env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"},
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except FileNotFoundError:
        raise SystemExit("loadtests.gogen needs go on PATH (as deploy/local/stack.sh does to build MinIO)") from None
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"building loadtests/gogen failed:\n{exc.stderr}") from None
    tmp.replace(path)  # atomic: a concurrent build never runs half a binary
    return path


def write_plan(
    out: IO[str],
    url: str,
    offsets: list[float],
    photo_spec: str,
    *,
    key: ClientKey | None,
    timeout_s: float,
    max_outstanding: int,
    expect: bool,
    seed: int | None = None,
    now: float | None = None,
) -> int:
    """Write the binary's plan for requests due at ``offsets`` (s from its start) to ``url`` (loopback only):
    fresh applicants with photos of ``photo_spec``, each signed by ``key`` for the second it is due (``now`` +
    its offset). Returns the number of requests planned."""
    check_loopback(url)
    parts = urlsplit(url)
    files = photo_files(parse_classes(photo_spec))
    paths = [p for label in files for p in files[label]]
    index = {label: [paths.index(p) for p in files[label]] for label in files}
    bodies = BodyFactory()
    rng = random.Random(seed)
    start = time.time() if now is None else now
    header = {
        "addr": parts.netloc,
        "path": parts.path or "/",
        "photos": [str(p) for p in paths],
        "tail": _b64(bodies.tail),
        "timeout_s": timeout_s,
        "max_outstanding": max_outstanding,
        "expect": expect,
    }
    out.write(json.dumps(header) + "\n")
    for due in offsets:
        label = pick_class(rng, photo_spec)
        head = bodies.head(fresh_registration(rng))
        headers = request_headers(bodies, rng, key, timestamp=int(start + due))
        row = {
            "due": round(due, 6),
            "head": _b64(head),
            "photo": rng.choice(index[label]),
            "label": label,
            "headers": list(headers.items()),
        }
        out.write(json.dumps(row) + "\n")
    return len(offsets)


def read_results(path: Path) -> Iterator[tuple[outcomes.Outcome, bool]]:
    """The binary's results as outcome rows (the answer classified as :mod:`loadtests.openloop` does), each with
    whether it was launched."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != RESULT_COLUMNS:
            raise ValueError(f"{path}: unexpected columns {reader.fieldnames}")
        for r in reader:
            status = int(r["status"])
            outcome = r["error"] or outcomes.classify(status, base64.b64decode(r["answer"]))
            row = outcomes.Outcome(
                start=float(r["start"]),
                latency_ms=0.0 if r["error"] == "client_saturated" else float(r["latency_ms"]),
                kind="register",
                status=status,
                outcome=outcome,
                size_class=r["label"],
                bytes=int(r["bytes"]),
            )
            yield row, r["error"] != "client_saturated"


def run(
    url: str,
    offsets: list[float],
    photo_spec: str,
    *,
    key: ClientKey | None,
    timeout_s: float = 30.0,
    max_outstanding: int = 2000,
    expect: bool = False,
    seed: int | None = None,
) -> tuple[list[outcomes.Outcome], int, float]:
    """Plan, send and read back: (one outcome per planned request, how many were launched, the binary's launch
    lateness p99 in ms). Blocks for the run (about the last offset + ``timeout_s``); raises ``RuntimeError`` when
    the binary fails."""
    binary = build()
    with tempfile.TemporaryDirectory(prefix="gogen-") as tmp:
        plan, raw = Path(tmp) / "plan.jsonl", Path(tmp) / "results.csv"
        with plan.open("w") as f:
            write_plan(
                f, url, offsets, photo_spec, key=key, timeout_s=timeout_s, max_outstanding=max_outstanding,
                expect=expect, seed=seed,
            )  # fmt: skip
        done = subprocess.run(
            [str(binary), "-plan", str(plan), "-out", str(raw)],
            check=False,
            capture_output=True,
            text=True,
            timeout=(offsets[-1] if offsets else 0.0) + timeout_s + 60.0,
        )
        if done.returncode != 0:
            raise RuntimeError(f"gogen exited with {done.returncode}: {done.stderr.strip()}")
        pairs = list(read_results(raw))
    late_p99 = float(done.stdout.rsplit("client lateness p99", 1)[1].split("ms")[0])
    return [row for row, _ in pairs], sum(launched for _, launched in pairs), late_p99


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def main(argv: list[str] | None = None) -> None:
    args = arguments(__doc__).parse_args(argv)
    offsets = offsets_of(args)
    rows, launched, late_p99 = run(
        args.url.rstrip("/") + args.path,
        offsets,
        args.photos,
        key=load_key(),
        timeout_s=args.timeout,
        max_outstanding=args.max_outstanding,
        expect=args.expect,
    )
    outcomes.write(args.out, rows)
    print(summary_line(args, len(offsets), launched, rows, late_p99))


if __name__ == "__main__":
    main()
