"""The bot's services, built in one place outside the Discord client: `python -m bot`, the tests, the sandbox
and the benchmarks all build them with `build_services`.

Each service gets what it needs as constructor arguments; none reaches into the bot. The announcer is the
only one that needs Discord, and only through a `GuildLookup` (the client, attached with `connect`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.announcer import Announcer, GuildLookup, Offline
from bot.cards import ProfileCards
from bot.clock import Clock
from bot.management import BULK_CHUNK, Management
from bot.ownership import Ownership
from bot.profiles import Profiles
from bot.recording import ActivityRecorder
from bot.scheduler import Scheduler
from bot.storage import Storage

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Services:
    storage: Storage
    clock: Clock
    ownership: Ownership
    recorder: ActivityRecorder
    scheduler: Scheduler
    announcer: Announcer
    management: Management
    profiles: Profiles
    cards: ProfileCards

    def connect(self, guilds: GuildLookup) -> None:
        """Give the announcer the Discord client's guild cache to post in."""
        self.announcer.guilds = guilds

    async def start(self) -> None:
        """Start the background work: the recorder's flush, bulk jobs cut off by a stop, the rollovers (and
        those missed while down), the announcer (which posts once the client is ready)."""
        self.recorder.start()
        # Before anything else writes: a removal or points change cut off by a stop is finished first.
        await self.management.resume_bulk_jobs()
        await self.scheduler.start()
        self.announcer.start()

    async def stop(self) -> None:
        """Stop the background work and write everything pending; the storage stays open."""
        try:
            await self.scheduler.close()
            await self.announcer.close()
            await self.recorder.close()
        finally:
            self.cards.close()

    async def close(self) -> None:
        """`stop`, then close the storage."""
        try:
            await self.stop()
        finally:
            await self.storage.close()


def build_services(
    storage: Storage,
    clock: Clock,
    *,
    ownership: Ownership | None = None,
    guilds: GuildLookup | None = None,
    flush_interval: float = 0.5,
    max_batch: int = 20_000,
    max_cached_members: int = 100_000,
    bulk_chunk: int = BULK_CHUNK,
) -> Services:
    """Every service on `storage`, wired together; nothing is started (see `Services.start`)."""
    ownership = ownership or Ownership.everything()
    recorder = ActivityRecorder(storage, clock, flush_interval=flush_interval, max_batch=max_batch,
                                max_cached_members=max_cached_members)
    scheduler = Scheduler(recorder, storage, clock, ownership=ownership)
    announcer = Announcer(guilds or Offline(), storage, clock, ownership=ownership)
    recorder.committed_listeners.append(announcer.wake)
    return Services(
        storage=storage,
        clock=clock,
        ownership=ownership,
        recorder=recorder,
        scheduler=scheduler,
        announcer=announcer,
        management=Management(storage, recorder, scheduler, clock, bulk_chunk=bulk_chunk, ownership=ownership),
        profiles=Profiles(storage, recorder, clock),
        cards=ProfileCards(),
    )
