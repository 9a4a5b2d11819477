"""Scheduled work: each guild's rollover at its local midnight, missed rollovers at start-up, and
background jobs such as retroactive evaluation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import date, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.clock import Clock
from bot.engine.achievements import Achievement
from bot.ownership import Ownership
from bot.recording import ActivityRecorder, zone
from bot.storage import Storage, Transaction

log = logging.getLogger(__name__)

SWEEP_MINUTES = 15
RETROACTIVE = "retroactive:"  # bot_meta key prefix of retroactive jobs not finished yet


class Scheduler:
    """Rollovers and retroactive jobs run only for the guilds `ownership` gives this process: processes
    sharing one database each close their own guilds' days."""

    def __init__(
        self, recorder: ActivityRecorder, storage: Storage, clock: Clock, *, ownership: Ownership | None = None
    ) -> None:
        self.recorder = recorder
        self.storage = storage
        self.clock = clock
        self.ownership = ownership or Ownership.everything()
        self._apscheduler = AsyncIOScheduler(timezone="UTC")
        self._locks: dict[int, asyncio.Lock] = {}
        self._background: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        """Run the rollovers missed while the bot was down, then schedule every known guild."""
        self._apscheduler.start()
        for settings in await self.storage.guilds.all():
            if self.ownership.owns(settings.guild_id):
                self.schedule_guild(settings.guild_id, settings.timezone)
        # A safety net for the cron jobs: in zones whose DST change happens at midnight (America/Santiago,
        # Africa/Cairo, ...) there is no 00:00 on that day, and cron skips it. Closing is idempotent.
        self._apscheduler.add_job(
            self.run_due_rollovers, IntervalTrigger(minutes=SWEEP_MINUTES), id="rollover:sweep",
            replace_existing=True, coalesce=True, max_instances=1,
        )
        await self.run_due_rollovers()
        await self.resume_retroactive()

    async def close(self) -> None:
        if self._apscheduler.running:
            self._apscheduler.shutdown(wait=False)
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def schedule_guild(self, guild_id: int, timezone: str) -> None:
        """(Re)schedule a guild's rollover for 00:00 in its timezone; APScheduler's cron trigger follows
        DST and 30/45-minute offsets."""
        if not self.ownership.owns(guild_id):
            return
        self._apscheduler.add_job(
            self.rollover_guild,
            CronTrigger(hour=0, minute=0, second=1, timezone=zone(timezone)),
            args=[guild_id],
            id=f"rollover:{guild_id}",
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=6 * 3600,
        )

    def next_rollover(self, guild_id: int) -> object | None:
        job = self._apscheduler.get_job(f"rollover:{guild_id}")
        return job.next_run_time if job else None

    async def run_due_rollovers(self) -> dict[int, date]:
        """Close every day that ended (in each guild's timezone) and was not closed yet."""
        closed: dict[int, date] = {}
        for settings in await self.storage.guilds.all():
            if not self.ownership.owns(settings.guild_id):
                continue
            day = await self.rollover_guild(settings.guild_id)
            if day is not None:
                closed[settings.guild_id] = day
        return closed

    async def rollover_guild(self, guild_id: int) -> date | None:
        """Close the guild's most recent ended local day, once; returns it, or None if already closed.

        Closing day D resets the streak of everyone not active on D, so closing only the latest missed
        day gives the same result as closing each missed day in turn.
        """
        if not self.ownership.owns(guild_id):
            # Its owner closes it; also a cron job still scheduled after this process lost its shards.
            return None
        lock = self._locks.setdefault(guild_id, asyncio.Lock())
        async with lock:
            state = await self.recorder.guild(guild_id)
            today = self.clock.now().astimezone(state.tz).date()
            yesterday = today - timedelta(days=1)
            last = state.settings.last_rollover_date
            if last is not None and last >= yesterday:
                return None
            reset = await self.recorder.close_day(guild_id, yesterday)
            if last is not None and last < yesterday - timedelta(days=1):
                log.info("guild %s: caught up missed rollovers %s..%s", guild_id, last + timedelta(days=1), yesterday)
            log.info("guild %s: rollover of %s, %d streaks reset", guild_id, yesterday, reset)
            return yesterday

    async def record_retroactive(
        self, conn: Transaction, guild_id: int, achievements: Sequence[Achievement]
    ) -> None:
        """Write down retroactive jobs inside the transaction that adds or changes the achievements: a crash
        right after that commit still leaves the jobs to resume at the next start."""
        for achievement in achievements:
            await self.storage.meta.set_in(conn, f"{RETROACTIVE}{guild_id}:{achievement.id}",
                                           self.clock.now().isoformat())

    async def start_retroactive(self, guild_id: int, achievements: Sequence[Achievement]) -> asyncio.Task[object]:
        """Give `achievements` to stored members who already meet them, in the background. The job is
        written down first (normally already by `record_retroactive`) and crossed off only once its unlocks
        are committed, so a restart at any point resumes it."""
        for achievement in achievements:
            await self.storage.meta.set(f"{RETROACTIVE}{guild_id}:{achievement.id}", self.clock.now().isoformat())
        return self.retroactive(guild_id, achievements)

    async def resume_retroactive(self) -> int:
        """Restart the retroactive jobs a shutdown interrupted; returns how many achievements it resumed."""
        pending: dict[int, list[Achievement]] = {}
        for key in await self.storage.meta.keys_with_prefix(RETROACTIVE):
            guild_part, _, achievement_id = key.removeprefix(RETROACTIVE).partition(":")
            if not self.ownership.owns(int(guild_part)):
                continue  # the owner's job to resume; left written down for it
            state = await self.recorder.guild(int(guild_part))
            achievement = state.rulebook.by_id.get(achievement_id)
            if achievement is None:  # removed since
                await self.storage.meta.delete(key)
            else:
                pending.setdefault(int(guild_part), []).append(achievement)
        for guild_id, achievements in pending.items():
            log.info("guild %s: resuming retroactive evaluation of %s", guild_id, [a.id for a in achievements])
            self.retroactive(guild_id, achievements)
        return sum(len(a) for a in pending.values())

    def retroactive(self, guild_id: int, achievements: Sequence[Achievement]) -> asyncio.Task[object]:
        async def job() -> object:
            try:
                count = await self.recorder.reevaluate(guild_id, achievements)
            except Exception:
                log.exception("guild %s: retroactive evaluation failed", guild_id)
                raise
            log.info("guild %s: retroactive evaluation unlocked %d", guild_id, count)
            for achievement in achievements:
                await self.storage.meta.delete(f"{RETROACTIVE}{guild_id}:{achievement.id}")
            return count

        task: asyncio.Task[object] = asyncio.create_task(job(), name=f"retroactive:{guild_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task
