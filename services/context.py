"""What one process holds for the services: settings, the stores, the Temporal client.

Built once (the API's lifespan, a CLI command, a bench) and passed to every service call.
"""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from core.settings import Settings
from core.temporal import connect
from storage.definitions import DefinitionStore
from storage.schedules import ScheduleStore

from .errors import Unavailable


class Services:
    def __init__(self, settings: Settings, *, interactive: bool = False) -> None:
        """``interactive``: the API's client (lazy, short retry window, a 503 after it); otherwise a
        worker's or CLI's, which waits ``temporal_retry_seconds`` for Temporal (core.temporal.connect)."""
        self.settings = settings
        self.interactive = interactive
        self.store = DefinitionStore(settings.resolved_database_url)
        self.schedules = ScheduleStore(self.store.engine)
        self._client: Client | None = None
        self.long_polls = 0  # in flight in this process (services/runs.py: get_run)
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await connect(self.settings, interactive=self.interactive)
                except Exception as e:  # the server being down is not the user's fault, nor a 500
                    raise Unavailable(f"cannot reach Temporal at {self.settings.temporal_address}: {e}",
                                      title="Temporal is unavailable") from e
            return self._client

    def dispose(self) -> None:
        self.store.dispose()
