"""The import graph of the layers: dependencies point inward.

* ``processors/`` is pure domain code: it imports no other layer and no I/O library (Kafka, HTTP, S3, metrics,
  sockets).
* ``intake/`` (shared) imports neither edge (``ingest/``, ``consumers/``). The one known remaining seam is the
  composition root, ``intake/cli.py``, which starts the edges (issue 19: the command line is to move to where the
  layers meet); it is allowed here by name, and only it.

Every import statement counts, also those inside functions (the CLI's lazy imports).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

IO_LIBRARIES = frozenset(
    {
        "aiobotocore",
        "aiohttp",
        "aiokafka",
        "boto3",
        "botocore",
        "confluent_kafka",
        "grpc",
        "http",
        "httpx",
        "kafka",
        "minio",
        "prometheus_client",
        "requests",
        "s3fs",
        "socket",
        "ssl",
        "urllib3",
    }
)
"""Top-level modules that do network or metrics I/O."""

FORBIDDEN: dict[str, frozenset[str]] = {
    "processors": frozenset({"intake", "ingest", "consumers"}) | IO_LIBRARIES,
    "intake": frozenset({"ingest", "consumers"}),
}
"""Layer -> the top-level modules it must not import."""

KNOWN_SEAMS: dict[str, frozenset[str]] = {"intake/cli.py": frozenset({"ingest", "consumers"})}
"""File -> the forbidden imports it still has, by design until the CLI moves out of ``intake/`` (issue 19)."""


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level module) of every absolute import in ``path``, at any depth of the file."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def violations(root: Path, forbidden: dict[str, frozenset[str]], seams: dict[str, frozenset[str]]) -> list[str]:
    """``file:line imports module`` for every forbidden import under ``root`` not allowed by ``seams``."""
    found = []
    for layer, banned in forbidden.items():
        for path in sorted((root / layer).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            allowed = seams.get(name, frozenset())
            for line, module in imported_modules(path):
                if module in banned and module not in allowed:
                    found.append(f"{name}:{line} imports {module}")
    return found


def test_layers_import_only_inward() -> None:
    assert violations(ROOT, FORBIDDEN, KNOWN_SEAMS) == []


def test_the_known_seam_is_still_needed() -> None:
    """When the CLI stops importing the edges (or moves), drop its entry from ``KNOWN_SEAMS``."""
    for name, allowed in KNOWN_SEAMS.items():
        path = ROOT / name
        assert path.is_file(), f"{name} is gone: remove it from KNOWN_SEAMS"
        assert allowed <= {module for _, module in imported_modules(path)}, f"{name}: narrow KNOWN_SEAMS"


@pytest.mark.parametrize(
    ("layer", "source", "module"),
    [
        ("intake", "from ingest.app import create_app\n", "ingest"),
        ("intake", "def f():\n    import consumers.worker\n", "consumers"),
        ("processors", "import aiohttp\n", "aiohttp"),
        ("processors", "from prometheus_client import Counter\n", "prometheus_client"),
        ("processors", "from minio import Minio\n", "minio"),
        ("processors", "import intake.kafka\n", "intake"),
    ],
)
def test_a_forbidden_import_is_found(tmp_path: Path, layer: str, source: str, module: str) -> None:
    (tmp_path / layer / "sub").mkdir(parents=True)
    (tmp_path / layer / "sub" / "m.py").write_text(source)
    assert violations(tmp_path, FORBIDDEN, KNOWN_SEAMS) == [
        f"{layer}/sub/m.py:{source.count(chr(10))} imports {module}"
    ]


def test_the_seam_is_narrow(tmp_path: Path) -> None:
    """Only intake/cli.py may import the edges; another intake module may not."""
    (tmp_path / "intake").mkdir()
    (tmp_path / "intake" / "cli.py").write_text("import ingest.server\n")
    (tmp_path / "intake" / "other.py").write_text("import ingest.server\n")
    assert violations(tmp_path, FORBIDDEN, KNOWN_SEAMS) == ["intake/other.py:1 imports ingest"]
