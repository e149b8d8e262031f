"""The history sweep: automatic versions and the end of the trash window, periodically.

Every ``interval`` seconds (a quarter of the shorter of ``SYNCD_AUTO_VERSION_SECONDS`` and
``SYNCD_TRASH_SECONDS``, at most a minute), one pass: documents that changed and are due get an
automatic version (``storage/history.py``; the newest ``SYNCD_AUTO_VERSIONS_KEEP`` kept), and
documents in the trash for the whole window are purged (``storage/trash.py``). Every node runs
it; both steps are safe to run concurrently (an advisory lock on Postgres for the versions, and a
purge is a no-op on a document already purged). ``passes`` counts completed passes, so a test can
wait for one instead of sleeping.
"""

from __future__ import annotations

import logging

from storage.history import SqlHistory
from storage.trash import SqlTrash

from .periodic import Periodic
from .settings import Settings

__all__ = ["HistorySweep"]

log = logging.getLogger("syncd.history")

MAX_INTERVAL = 60.0
MIN_INTERVAL = 0.05


class HistorySweep(Periodic):
    def __init__(self, history: SqlHistory, trash: SqlTrash, settings: Settings) -> None:
        self.history = history
        self.trash = trash
        self.settings = settings
        shortest = min(settings.auto_version_seconds, settings.trash_seconds)
        super().__init__("history sweep", max(MIN_INTERVAL, min(MAX_INTERVAL, shortest / 4)), log)

    async def run_pass(self) -> None:
        """Automatic versions, then purges at the end of the trash window."""
        made = await self.history.auto_versions(
            self.settings.auto_version_seconds, self.settings.auto_versions_keep
        )
        if made:
            log.debug("automatic versions of %d documents", len(made))
        for key in await self.trash.expired(self.settings.trash_seconds):
            if await self.trash.purge(key):
                log.info("doc %s: purged at the end of the trash window", key)
