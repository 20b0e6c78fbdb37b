"""Keeps the exclusion registries current in a running consumer, without a restart.

:class:`RegistryWatcher` owns a :class:`processors.screening.RegistryHolder`. :meth:`RegistryWatcher.watch`
(run as a task) looks at the registry folder every ``interval_s``; when a file was added, removed or changed
(name, size, mtime) it rebuilds the index in a thread and swaps it in. A failed reload keeps the index in use
and is logged with its reason (file names and line numbers only, never content). With no folder configured the
watcher screens nobody and says so once at start.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from processors.screening import RegistryHolder, RegistryIndex, is_registry_file

log = logging.getLogger("intake.consumer.registries")

Signature = tuple[tuple[str, int, int], ...]


def folder_signature(path: Path) -> Signature:
    """Names, sizes and mtimes of the registry files in ``path`` (empty when it does not exist)."""
    if not path.is_dir():
        return ()
    out = []
    for f in sorted(path.iterdir()):
        if is_registry_file(f):
            st = f.stat()
            out.append((f.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


class RegistryWatcher:
    """Screens keyed NIK hashes against the current registries; reloads them when the folder changes."""

    def __init__(self, folder: str, pepper: bytes) -> None:
        """Loads the registries now (blocking; raises ``RegistryLoadError`` when a configured folder is bad)."""
        self._path = Path(folder) if folder else None
        if self._path is None:
            log.warning("no INTAKE_REGISTRY_DIR: registrations are not screened against exclusion registries")
            self._holder = RegistryHolder(Path("."), pepper, initial=RegistryIndex.empty())
            self._signature: Signature = ()
        else:
            self._signature = folder_signature(self._path)
            self._holder = RegistryHolder(self._path, pepper)
            log.info("registries loaded", extra={"entries": len(self._holder.index)})

    def screen(self, nik_hash: bytes) -> str | None:
        """The reason code of the first registry listing ``nik_hash``, or None. Never blocks."""
        return self._holder.screen(nik_hash)

    async def check_once(self) -> bool:
        """Reload if the folder changed; True when a new index was swapped in."""
        if self._path is None:
            return False
        signature = folder_signature(self._path)
        if signature == self._signature:
            return False
        outcome = await asyncio.to_thread(self._holder.reload)
        self._signature = signature
        if outcome.ok:
            log.info("registries reloaded", extra={"entries": len(self._holder.index)})
            return True
        log.error("registry reload failed; keeping the previous index", extra={"error": outcome.error})
        return False

    async def watch(self, interval_s: float) -> None:
        """Check the folder every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            await self.check_once()
