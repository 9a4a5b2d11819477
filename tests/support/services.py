"""The services `python -m bot` builds (bot.services.build_services), for tests that need no Discord client."""

from __future__ import annotations

from pathlib import Path

from bot.clock import FakeClock
from bot.management import BULK_CHUNK
from bot.ownership import Ownership
from bot.services import Services, build_services
from bot.storage import Storage


async def open_services(
    path: Path | str, clock: FakeClock, *, ownership: Ownership | None = None, flush_interval: float = 3600,
    max_batch: int = 20_000, max_cached_members: int = 100_000, bulk_chunk: int = BULK_CHUNK,
) -> Services:
    """The services on the database at `path` (a SQLite file or a PostgreSQL URL). Nothing is started: the
    recorder writes when a test flushes (the default `flush_interval` never comes), no scheduler runs."""
    return build_services(
        await Storage.open(path), clock, ownership=ownership, flush_interval=flush_interval, max_batch=max_batch,
        max_cached_members=max_cached_members, bulk_chunk=bulk_chunk,
    )
