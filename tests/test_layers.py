"""The import graph of the layers: dependencies point inward.

* ``processors/`` is pure domain code: it imports no other layer and no I/O library (Kafka, HTTP, S3, metrics,
  sockets).
* ``intake/`` (shared) imports neither edge (``ingest/``, ``consumers/``) nor the command line, with no exception.
* The edges do not import each other, nor the command line.
* ``cli/`` is the composition root, where the layers meet: it may import everything, and nothing imports it.

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
    "processors": frozenset({"intake", "ingest", "consumers", "cli"}) | IO_LIBRARIES,
    "intake": frozenset({"ingest", "consumers", "cli"}),
    "ingest": frozenset({"consumers", "cli"}),
    "consumers": frozenset({"ingest", "cli"}),
}
"""Layer -> the top-level modules it must not import. ``cli/`` is absent: it may import every layer."""


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level module) of every absolute import in ``path``, at any depth of the file."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def violations(root: Path, forbidden: dict[str, frozenset[str]]) -> list[str]:
    """``file:line imports module`` for every forbidden import under ``root``."""
    found = []
    for layer, banned in forbidden.items():
        for path in sorted((root / layer).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            for line, module in imported_modules(path):
                if module in banned:
                    found.append(f"{name}:{line} imports {module}")
    return found


def test_layers_import_only_inward() -> None:
    assert violations(ROOT, FORBIDDEN) == []


def test_every_layer_is_checked() -> None:
    """A new top-level package must be given its place in the graph (or be the command line)."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "loadtests"}
    assert packages == set(FORBIDDEN) | {"cli"}


def test_the_command_line_meets_the_layers() -> None:
    """The composition root imports the edges it starts (were it not to, the graph above would mean little)."""
    imported = {module for path in (ROOT / "cli").rglob("*.py") for _, module in imported_modules(path)}
    assert {"intake", "ingest", "consumers", "processors"} <= imported


@pytest.mark.parametrize(
    ("layer", "source", "module"),
    [
        ("intake", "from ingest.app import create_app\n", "ingest"),
        ("intake", "def f():\n    import consumers.worker\n", "consumers"),
        ("intake", "from cli.main import main\n", "cli"),
        ("ingest", "import consumers.runner\n", "consumers"),
        ("consumers", "from ingest import server\n", "ingest"),
        ("processors", "import aiohttp\n", "aiohttp"),
        ("processors", "from prometheus_client import Counter\n", "prometheus_client"),
        ("processors", "from minio import Minio\n", "minio"),
        ("processors", "import intake.kafka\n", "intake"),
    ],
)
def test_a_forbidden_import_is_found(tmp_path: Path, layer: str, source: str, module: str) -> None:
    (tmp_path / layer / "sub").mkdir(parents=True)
    (tmp_path / layer / "sub" / "m.py").write_text(source)
    assert violations(tmp_path, FORBIDDEN) == [f"{layer}/sub/m.py:{source.count(chr(10))} imports {module}"]


def test_no_intake_module_is_exempt(tmp_path: Path) -> None:
    """No file of ``intake/`` may import an edge, whatever its name (the CLI once lived there)."""
    (tmp_path / "intake").mkdir()
    (tmp_path / "intake" / "cli.py").write_text("import ingest.server\n")
    assert violations(tmp_path, FORBIDDEN) == ["intake/cli.py:1 imports ingest"]
