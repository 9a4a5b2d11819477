"""The recorder: applies activities, grants and revokes to cached members and stages them for writing.

It puts the parts together: the guild cache, the member cache, the write-behind batcher, and the
synchronous changes of `bot.recording.changes`. Every path first awaits `_ready()` (guild and member cached,
the guild not paused) and then changes the member with no await in between.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime

from bot.clock import Clock
from bot.engine.achievements import Achievement
from bot.engine.evaluator import Evaluation
from bot.engine.stats import Activity, MemberStats, close_day
from bot.recording import changes
from bot.recording.guilds import GuildCache
from bot.recording.members import MemberCache
from bot.recording.state import GuildState, Key, MemberState, RecordResult
from bot.recording.writes import WriteBehind
from bot.storage import Storage, Transaction

log = logging.getLogger(__name__)


class ActivityRecorder:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        *,
        flush_interval: float = 0.5,
        max_batch: int = 20_000,
        max_cached_members: int = 100_000,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.writes = WriteBehind(storage, clock, self._row, flush_interval=flush_interval, max_batch=max_batch)
        self.members = MemberCache(storage, max_cached=max_cached_members, pinned=self.writes.holds)
        self.guilds = GuildCache(storage, clock, self.writes.pending_revocations)
        # submit(): activities waiting for their member to load, in arrival order, and the tasks draining them.
        self._waiting: dict[Key, list[tuple[Activity, str | None]]] = {}
        self._drains: set[asyncio.Task[None]] = set()
        self._paused: dict[int, asyncio.Event] = {}
        self._epochs: dict[int, int] = {}  # bumped by each paused() change: older reads are stale

    @property
    def committed_listeners(self) -> list[Callable[[], Awaitable[None] | None]]:
        """Called after each commit that wrote announcements."""
        return self.writes.committed_listeners

    def _row(self, key: Key) -> MemberStats | None:
        state = self.members.get(key)
        return None if state is None else MemberStats(dict(state.stats.values), state.stats.last_active)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.writes.start()

    async def close(self) -> None:
        """Stop the background flush and write everything still pending (submitted activities included)."""
        await self.drained()
        await self.writes.close()

    async def flush(self) -> None:
        await self.writes.flush()

    # ------------------------------------------------------------------ reading
    async def guild(self, guild_id: int) -> GuildState:
        return await self.guilds.get(guild_id)

    async def reload_guild(self, guild_id: int) -> GuildState:
        """Re-read settings, tiers and achievements after a moderator changed them."""
        self.guilds.drop(guild_id)
        return await self.guilds.get(guild_id)

    def cached_guild(self, guild_id: int) -> GuildState | None:
        return self.guilds.cached(guild_id)

    def known_guilds(self) -> list[int]:
        return self.guilds.known()

    async def snapshot(self, guild_id: int, member_id: int) -> tuple[MemberStats, set[str]]:
        """The member's current stats and unlocks (including changes not yet flushed); copies."""
        state = self.members.get((guild_id, member_id))
        if state is None:
            return await self.storage.members.load(guild_id, member_id)
        return state.copy()

    # ------------------------------------------------------------------ pauses
    async def _gate(self, guild_id: int) -> None:
        while (gate := self._paused.get(guild_id)) is not None:
            await gate.wait()

    @asynccontextmanager
    async def paused(self, guild_id: int) -> AsyncIterator[Transaction]:
        """A bulk change of a guild's stored members in one transaction (reset a member); see bulk_change."""
        async with self.bulk_change(guild_id), self.storage.db.transaction() as conn:
            yield conn

    @asynccontextmanager
    async def bulk_change(self, guild_id: int) -> AsyncIterator[None]:
        """A bulk change of a guild's stored members, in as many transactions as the caller likes (an
        achievement's removal, chunk by chunk). Bulk changes of one guild run one at a time.

        Activities of that guild wait meanwhile; pending changes are flushed first; afterwards (even after
        an error, as some chunks may be committed) the guild's cached members and achievements are dropped,
        to be reloaded from storage before the next activity is applied.
        """
        await self._gate(guild_id)
        gate = asyncio.Event()
        self._paused[guild_id] = gate
        try:
            loading = self.members.loads_of(guild_id)
            if loading:
                await asyncio.gather(*loading, return_exceptions=True)
            await self.flush()
            try:
                yield
            finally:
                # Every path that changes a member waits at the gate after its last await, so nothing of this
                # guild was staged since the flush; what is cached may predate the change: reload it.
                staged = self.writes.staged_in(guild_id)
                if staged:
                    log.error("guild %s: %d members changed during a pause; their changes are lost", guild_id,
                              len(staged))
                self.members.drop_guild(guild_id)
                self.guilds.drop(guild_id)  # the rulebook too: an edit's new points apply from the next activity
                self._epochs[guild_id] = self._epochs.get(guild_id, 0) + 1
        finally:
            del self._paused[guild_id]
            gate.set()

    async def _ready(self, guild_id: int, member_id: int) -> tuple[GuildState, MemberState]:
        """The guild's and member's cached state, returned with no await since the pause gate was checked,
        so the caller may change it synchronously (bot.recording.changes) and a bulk change can never be
        overwritten."""
        key = (guild_id, member_id)
        while True:
            guild = self.guilds.cached(guild_id)
            state = self.members.get(key)
            if guild is not None and state is not None and guild_id not in self._paused:
                self.members.touch(key)
                return guild, state
            if guild_id in self._paused:
                await self._gate(guild_id)
            elif guild is None:
                await self.guilds.get(guild_id)
            else:
                await self.members.load(guild_id, member_id)

    # ------------------------------------------------------------------ recording
    async def record(self, activity: Activity, content: str | None = None) -> RecordResult:
        # The common case, a cached guild and member, takes no coroutine hop at all.
        guild_id = activity.guild_id
        key = (guild_id, activity.member_id)
        guild = self.guilds.cached(guild_id)
        state = self.members.get(key)
        if guild is None or state is None or guild_id in self._paused:
            guild, state = await self._ready(guild_id, activity.member_id)
        else:
            self.members.touch(key)
        return self._apply(guild, state, activity, content)

    def submit(self, activity: Activity, content: str | None = None) -> None:
        """Record an activity without waiting: the event listeners' path.

        A cached member is updated at once. Otherwise the activity waits, in order, until its member is
        loaded, so the event handler (and the message it holds) is done immediately instead of piling up
        while a burst of members not cached is loaded.
        """
        guild_id = activity.guild_id
        key = (guild_id, activity.member_id)
        guild = self.guilds.cached(guild_id)
        state = self.members.get(key)
        if guild is not None and state is not None and guild_id not in self._paused and key not in self._waiting:
            self.members.touch(key)
            self._apply(guild, state, activity, content)
            return
        waiting = self._waiting.get(key)
        if waiting is not None:
            waiting.append((activity, content))
            return
        self._waiting[key] = [(activity, content)]
        task = asyncio.create_task(self._drain(key), name="recorder-submitted")
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def drained(self) -> None:
        """Wait until every submitted activity has been applied (it may still be waiting for a flush)."""
        while self._drains:
            await asyncio.gather(*list(self._drains), return_exceptions=True)

    async def _drain(self, key: Key) -> None:
        try:
            guild, state = await self._ready(*key)
        except Exception:
            lost = self._waiting.pop(key, [])
            log.exception("guild %s: %d activities of member %s lost: the member could not be loaded",
                          key[0], len(lost), key[1])
            return
        # No await from here: everything that queued meanwhile is applied in order, then later
        # activities take submit()'s direct path.
        for activity, content in self._waiting.pop(key, []):
            self._apply(guild, state, activity, content)

    async def record_many(self, activities: Sequence[Activity]) -> list[RecordResult]:
        """Record a batch (imports, benchmarks, replays): members not cached are loaded together first."""
        for guild_id in {a.guild_id for a in activities}:
            await self._gate(guild_id)
            await self.guilds.get(guild_id)
            await self.members.load_missing(guild_id, [a.member_id for a in activities if a.guild_id == guild_id])
        results = []
        for activity in activities:
            guild, state = await self._ready(activity.guild_id, activity.member_id)
            results.append(self._apply(guild, state, activity, None))
        self.members.evict()
        return results

    def _apply(self, guild: GuildState, state: MemberState, activity: Activity, content: str | None) -> RecordResult:
        evaluation = changes.apply(guild, state, activity, content)
        if evaluation is None:
            return RecordResult(counted=False)
        self._stage(activity.guild_id, activity.member_id, state, guild, evaluation, activity.at,
                    activity.channel_id)
        return RecordResult(True, evaluation.unlocked, evaluation.tier_reached)

    def _stage(self, guild_id: int, member_id: int, state: MemberState, guild: GuildState,
               evaluation: Evaluation, at: datetime, channel_id: int | None) -> None:
        announcements = (
            changes.announcements_for(guild_id, member_id, state.stats, guild.tiers, evaluation, channel_id)
            if evaluation.unlocked or evaluation.tier_reached else []
        )
        self.writes.stage((guild_id, member_id), [(a.id, at) for a in evaluation.unlocked], announcements)

    async def grant(self, guild_id: int, member_id: int, achievement_id: str) -> RecordResult:
        """A moderator gives an achievement, whatever its condition; not counted if the member has it."""
        guild, state = await self._ready(guild_id, member_id)
        now = self.clock.now()
        granted = changes.grant(guild, state, member_id, achievement_id, now)
        if granted is None:
            return RecordResult(counted=False)
        if granted.ended_revoke:
            self.writes.stage_end_of_revoke((guild_id, member_id), achievement_id)
        self._stage(guild_id, member_id, state, guild, granted.evaluation, now, None)
        return RecordResult(True, granted.evaluation.unlocked, granted.evaluation.tier_reached)

    async def revoke(self, guild_id: int, member_id: int, achievement_id: str, points: int) -> bool:
        """Take an unlock back, with the points it gave; False if the member did not have it."""
        guild, state = await self._ready(guild_id, member_id)
        if not changes.revoke(guild, state, member_id, achievement_id, points):
            return False
        self.writes.stage_revoke((guild_id, member_id), achievement_id)
        return True

    # ------------------------------------------------------------------ walks
    async def reevaluate(self, guild_id: int, achievements: Sequence[Achievement], chunk: int = 500) -> int:
        """Retroactive evaluation: members who already meet `achievements` get them.

        Walks the guild in chunks of stored members, yielding to the event loop between chunks.
        Returns how many unlocks it made.
        """
        await self.flush()
        wanted = [a.id for a in achievements]
        now = self.clock.now()
        total = 0
        after = 0
        while True:
            await self._gate(guild_id)
            epoch = self._epochs.get(guild_id, 0)
            with self.members.watching_evictions() as evicted:
                rows = await self.storage.members.load_chunk(guild_id, after, chunk)
            if guild_id in self._paused or self._epochs.get(guild_id, 0) != epoch:
                continue  # a bulk change ran while the chunk was read: read it again
            if not rows:
                return await self._committed(total)
            guild = self.guilds.cached(guild_id) or await self.guilds.get(guild_id)
            if guild_id in self._paused or self._epochs.get(guild_id, 0) != epoch:
                continue
            # The achievements as they are now: an edit or a removal may have happened since the job began.
            targets = [guild.rulebook.by_id[i] for i in wanted if i in guild.rulebook.by_id]
            if not targets:
                return await self._committed(total)
            loading: list[int] = []
            for member_id, stats, unlocked in rows:
                key = (guild_id, member_id)
                state = self.members.get(key)
                if state is None:
                    if self.members.loading(key) or key in evicted:
                        # Being loaded by an activity, or changed and evicted since this chunk was read (the
                        # row is older than what was flushed): evaluate once loaded afresh.
                        loading.append(member_id)
                        continue
                    state = self.members.add(key, MemberState(stats, unlocked))
                total += self._reevaluate_one(guild_id, member_id, state, guild, now, targets)
            for member_id in loading:
                fresh_guild, state = await self._ready(guild_id, member_id)
                targets = [fresh_guild.rulebook.by_id[i] for i in wanted if i in fresh_guild.rulebook.by_id]
                total += self._reevaluate_one(guild_id, member_id, state, fresh_guild, now, targets)
            after = rows[-1][0]
            self.members.evict()
            await asyncio.sleep(0)

    async def _committed(self, total: int) -> int:
        # A finished walk is crossed off by its caller: its unlocks must be committed by then, or a crash
        # right after would lose them with nothing left to redo the walk.
        await self.flush()
        return total

    def _reevaluate_one(self, guild_id: int, member_id: int, state: MemberState, guild: GuildState, now: datetime,
                        achievements: Sequence[Achievement]) -> int:
        evaluation = changes.reevaluate(guild, state, member_id, now, achievements)
        if evaluation.unlocked:
            self._stage(guild_id, member_id, state, guild, evaluation, now, None)
        return len(evaluation.unlocked)

    async def close_day(self, guild_id: int, closed_day: date) -> int:
        """Rollover of one guild at the end of its local date `closed_day`: inactive members lose their
        streak, in storage and in the cache alike. Returns how many stored streaks were reset."""
        await self.flush()
        reset = await self.storage.members.reset_streaks(guild_id, closed_day)
        # The cached members follow, in slices so that a large cache never blocks the event loop. Anyone
        # active meanwhile has a last active day after `closed_day`, which close_day leaves alone.
        states = self.members.of_guild(guild_id)
        for start in range(0, len(states), 5000):
            for state in states[start:start + 5000]:
                close_day(state.stats, closed_day)
            await asyncio.sleep(0)
        async with self.storage.db.transaction() as conn:
            await self.storage.guilds.set_last_rollover(conn, guild_id, closed_day)
        self.guilds.closed_day(guild_id, closed_day)
        return reset
