"""The index in use by a running consumer, replaced atomically when the registries are reloaded."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from processors.screening.index import LoadReport, RegistryIndex
from processors.screening.loader import RegistryLoadError, load_registry_dir


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """Result of :meth:`RegistryHolder.reload`: ``ok`` and the new report, or the error that kept the old index."""

    ok: bool
    report: LoadReport | None = None
    error: str | None = None


class RegistryHolder:
    """Holds the current :class:`RegistryIndex` and replaces it atomically on :meth:`reload`.

    Readers call :meth:`screen` (or take :attr:`index` once per batch); they never see a half-built index. The
    caller decides when to reload (a timer, a signal, a file watcher); reloads are serialised by a lock.
    """

    def __init__(
        self,
        path: Path,
        pepper: bytes,
        *,
        loader: Callable[[Path, bytes], RegistryIndex] = load_registry_dir,
        initial: RegistryIndex | None = None,
    ) -> None:
        """Load the initial index now (errors propagate) unless ``initial`` is given."""
        self._path = path
        self._pepper = pepper
        self._loader = loader
        self._lock = threading.Lock()
        self._index = initial if initial is not None else loader(path, pepper)

    @property
    def index(self) -> RegistryIndex:
        """The current index."""
        return self._index

    def screen(self, nik_hash: bytes) -> str | None:
        """:meth:`RegistryIndex.screen` on the current index."""
        return self._index.screen(nik_hash)

    def reload(self) -> ReloadOutcome:
        """Load a new index from the same directory and swap it in; on any failure keep the current one.

        Never raises for a load failure: the outcome says what happened (file names and line numbers only).
        """
        with self._lock:
            try:
                fresh = self._loader(self._path, self._pepper)
            except (RegistryLoadError, ValueError) as error:
                return ReloadOutcome(ok=False, error=f"{type(error).__name__}: {error}")
            except Exception as error:  # keep serving on anything else, without echoing a message of unknown content
                return ReloadOutcome(ok=False, error=type(error).__name__)
            self._index = fresh
            return ReloadOutcome(ok=True, report=fresh.report)
