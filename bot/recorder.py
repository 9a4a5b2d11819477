"""Activity recording: stats, unlocks and announcements, with group commit.

Member state is cached in memory and changed synchronously (no await between reading and writing it),
so concurrent activities of one member cannot earn an achievement twice. Changes are written by a
background flush in one transaction per batch, at most `flush_interval` after they happened; an unlock
and its announcement rows are written in the same transaction, and announcements are posted only after
that commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.clock import Clock
from bot.engine.achievements import Achievement
from bot.engine.conditions import parse_condition
from bot.engine.defaults import DEFAULT_PACK
from bot.engine.evaluator import Evaluation, RuleBook, evaluate, evaluate_all
from bot.engine.stats import Activity, ActivityKind, MemberStats, apply_activity, close_day, local_date_and_hour
from bot.engine.tiers import Tier, tier_change, tier_for, tier_progress
from bot.storage import GuildSettings, NewAnnouncement, Storage, Transaction

log = logging.getLogger(__name__)

Key = tuple[int, int]  # (guild_id, member_id)
MEMBER_LOAD_BATCH = 500  # members loaded per query (SQLite binds them as parameters)


@dataclass(slots=True)
class GuildState:
    settings: GuildSettings
    tz: ZoneInfo
    rulebook: RuleBook
    tiers: list[Tier]
    # member id -> achievements a moderator revoked: never earned again by a condition, only by a grant.
    # Rare, so the whole guild's are kept with it.
    revoked: dict[int, set[str]] = field(default_factory=dict)


@dataclass(slots=True)
class MemberState:
    stats: MemberStats
    unlocked: set[str]
    last_counted_message: datetime | None = None  # anti-spam cooldown; memory only

    def settle(self, revoked: set[str] | None, evaluate_with: Callable[[set[str]], Evaluation]) -> Evaluation:
        """Run an evaluation that must not unlock what a moderator revoked; its unlocks join `unlocked`."""
        if not revoked:
            return evaluate_with(self.unlocked)
        evaluation = evaluate_with(self.unlocked | revoked)
        self.unlocked.update(a.id for a in evaluation.unlocked)
        return evaluation


@dataclass(slots=True)
class RecordResult:
    counted: bool
    unlocked: list[Achievement] = field(default_factory=list)
    tier_reached: Tier | None = None


@dataclass(slots=True)
class _Batch:
    """Changes staged since the last flush. Every item belongs to one member, so a batch splits by member
    into bounded transactions, each carrying a member's stats row with that member's unlocks and
    announcements (a crash between two of them leaves each member consistent)."""

    dirty: set[Key] = field(default_factory=set)
    unlocks: list[tuple[int, int, str, datetime]] = field(default_factory=list)
    # (guild, member, achievement, revoked?) in the order they happened: True revokes (the unlock row goes,
    # a revocation row stops it being earned again), False is a grant ending an earlier revoke.
    revocations: list[tuple[int, int, str, bool]] = field(default_factory=list)
    announcements: list[NewAnnouncement] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.dirty or self.unlocks or self.revocations or self.announcements)

    def split(self, members: int) -> list[_Batch]:
        """This batch as parts of at most `members` members each, every member's items in its part."""
        keys = list(self.dirty | {u[:2] for u in self.unlocks} | {r[:2] for r in self.revocations}
                    | {(a.guild_id, a.member_id) for a in self.announcements})
        if len(keys) <= members:
            return [self]
        part_of = {key: n // members for n, key in enumerate(keys)}
        parts = [_Batch() for _ in range(max(part_of.values()) + 1)]
        for key in self.dirty:
            parts[part_of[key]].dirty.add(key)
        for unlock in self.unlocks:
            parts[part_of[unlock[:2]]].unlocks.append(unlock)
        for change in self.revocations:
            parts[part_of[change[:2]]].revocations.append(change)
        for item in self.announcements:
            parts[part_of[(item.guild_id, item.member_id)]].announcements.append(item)
        return parts


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("unknown timezone %r in the database; using UTC", name)
        return ZoneInfo("UTC")


def passes_anti_spam(settings: GuildSettings, last_counted: datetime | None, at: datetime, content: str | None) -> bool:
    """Whether a message counts under the guild's anti-spam rules (off by default)."""
    cooldown = timedelta(seconds=settings.anti_spam_cooldown)
    if settings.anti_spam_cooldown and last_counted is not None and at - last_counted < cooldown:
        return False
    # Without the message-content intent the content is empty: the length rule cannot apply then.
    return not (settings.anti_spam_min_length and content and len(content.strip()) < settings.anti_spam_min_length)


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
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.max_cached_members = max_cached_members
        self.coalesce_delay = min(0.05, flush_interval)
        self._guilds: dict[int, GuildState] = {}
        self._guild_loads: dict[int, asyncio.Future[GuildState]] = {}
        self._members: OrderedDict[Key, MemberState] = OrderedDict()
        self._member_loads: dict[Key, asyncio.Future[MemberState]] = {}
        self._load_queue: dict[int, list[int]] = {}  # guild id -> member ids waiting for a batched load
        self._loader: asyncio.Task[None] | None = None
        # submit(): activities waiting for their member to load, in arrival order, and the tasks draining them.
        self._waiting: dict[Key, list[tuple[Activity, str | None]]] = {}
        self._drains: set[asyncio.Task[None]] = set()
        self._batch = _Batch()
        self._flushing: set[Key] = set()  # members of the batch a flush is writing
        self._writing = _Batch()  # the batch a flush is writing
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._paused: dict[int, asyncio.Event] = {}
        self._epochs: dict[int, int] = {}  # bumped by each paused() change: older reads are stale
        # Members evicted while a walk or a bulk load read rows from storage: a row read before such a
        # member's last flush is older than what was evicted, so it must not be cached (see _stored_rows).
        self._eviction_watches: list[set[Key]] = []
        self.committed_listeners: list[Callable[[], Awaitable[None] | None]] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._flush_loop(), name="recorder-flush")

    async def close(self) -> None:
        """Stop the background flush and write everything still pending (submitted activities included).

        The flush task is asked to stop, not cancelled: a cancel arriving while its COMMIT runs on
        aiosqlite's thread would look like a failure, and the batch (announcements included) would be
        written a second time."""
        await self.drained()
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    async def _flush_loop(self) -> None:
        while not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval)
                if not self._closed:
                    # Woken early (an unlock, a full batch): wait a moment so a burst becomes one transaction.
                    await asyncio.sleep(self.coalesce_delay)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._closed:
                return  # close() does the last flush
            try:
                await self.flush()
            except Exception:
                log.exception("flush failed; will retry")
                await asyncio.sleep(min(self.flush_interval, 1.0))

    # ------------------------------------------------------------------ guilds
    async def guild(self, guild_id: int) -> GuildState:
        state = self._guilds.get(guild_id)
        if state is not None:
            return state
        pending = self._guild_loads.get(guild_id)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._guild_loads[guild_id] = pending
            try:
                state = await self._load_guild(guild_id)
            except BaseException as exc:
                pending.set_exception(exc)
                pending.exception()  # mark retrieved; callers re-raise from their own await
                raise
            finally:
                self._guild_loads.pop(guild_id, None)
            self._guilds[guild_id] = state
            pending.set_result(state)
            return state
        return await asyncio.shield(pending)

    async def _load_guild(self, guild_id: int) -> GuildState:
        settings = await self.storage.guilds.get(guild_id)
        if settings is None:
            settings = await self._create_guild(guild_id)
        achievements = await self.storage.achievements.list(guild_id)
        tiers = await self.storage.tiers.list(guild_id)
        revoked = await self.storage.members.revocations(guild_id)
        # Revokes and grants staged but not yet committed are not in storage yet: replay them in order.
        for batch in (self._writing, self._batch):
            for g, member_id, achievement_id, is_revoke in batch.revocations:
                if g != guild_id:
                    continue
                if is_revoke:
                    revoked.setdefault(member_id, set()).add(achievement_id)
                else:
                    revoked.get(member_id, set()).discard(achievement_id)
        return GuildState(settings, zone(settings.timezone), RuleBook(achievements), tiers, revoked)

    async def _create_guild(self, guild_id: int) -> GuildSettings:
        """A guild seen for the first time gets the default settings, tiers and achievement pack."""
        now = self.clock.now()
        tz = ZoneInfo("UTC")
        yesterday = now.astimezone(tz).date() - timedelta(days=1)
        settings = GuildSettings(guild_id=guild_id, last_rollover_date=yesterday)
        async with self.storage.db.transaction() as conn:
            if await self.storage.guilds.insert(conn, settings, now):
                await self.storage.tiers.insert_defaults(conn, guild_id)
                for spec in DEFAULT_PACK:
                    achievement = Achievement(
                        id=spec.id, name=spec.name, description=spec.description, points=spec.points,
                        condition=parse_condition(spec.condition), hidden=spec.hidden,
                    )
                    await self.storage.achievements.save(conn, guild_id, achievement, now)
                log.info("guild %s: created with the default achievement pack", guild_id)
        return await self.storage.guilds.get(guild_id) or settings

    async def reload_guild(self, guild_id: int) -> GuildState:
        """Re-read settings, tiers and achievements after a moderator changed them."""
        self._guilds.pop(guild_id, None)
        return await self.guild(guild_id)

    def cached_guild(self, guild_id: int) -> GuildState | None:
        return self._guilds.get(guild_id)

    def known_guilds(self) -> list[int]:
        return list(self._guilds)

    # ------------------------------------------------------------------ members
    async def member(self, guild_id: int, member_id: int) -> MemberState:
        key = (guild_id, member_id)
        state = self._members.get(key)
        if state is not None:
            self._members.move_to_end(key)
            return state
        pending = self._member_loads.get(key)
        if pending is None:
            # Loaded in batches by one task: a burst of members not cached (a busy guild after a restart)
            # costs a few queries per few hundred members instead of three per member.
            pending = asyncio.get_running_loop().create_future()
            self._member_loads[key] = pending
            self._load_queue.setdefault(guild_id, []).append(member_id)
            if self._loader is None or self._loader.done():
                self._loader = asyncio.create_task(self._load_members(), name="recorder-member-loads")
        await asyncio.shield(pending)
        # Other loads may have evicted it while this waiter slept: only a cached state may be changed,
        # or the change would never be flushed.
        return await self.member(guild_id, member_id)

    async def _load_members(self) -> None:
        while self._load_queue:
            guild_id, queued = next(iter(self._load_queue.items()))
            batch = queued[:MEMBER_LOAD_BATCH]
            if len(queued) > MEMBER_LOAD_BATCH:
                self._load_queue[guild_id] = queued[MEMBER_LOAD_BATCH:]
            else:
                del self._load_queue[guild_id]
            keys = [(guild_id, member_id) for member_id in batch]
            try:
                loaded = await self.storage.members.load_many(guild_id, batch)
            except BaseException as exc:
                cancelled = isinstance(exc, asyncio.CancelledError)
                if cancelled:
                    keys += [(g, m) for g, ids in self._load_queue.items() for m in ids]
                    self._load_queue.clear()
                for key in keys:
                    pending = self._member_loads.pop(key)
                    if cancelled:
                        pending.cancel()
                    else:
                        pending.set_exception(exc)
                        pending.exception()  # mark retrieved; waiters re-raise from their own await
                if cancelled:
                    raise
                log.exception("loading %d members of guild %s failed", len(batch), guild_id)
                continue
            for key, member_id in zip(keys, batch, strict=True):
                state = self._members.get(key)  # someone may have inserted it meanwhile (retroactive walk)
                if state is None:
                    stats, unlocked = loaded.get(member_id) or (MemberStats(), set())
                    state = self._members[key] = MemberState(stats, unlocked)
                self._member_loads.pop(key).set_result(state)
            self._evict(keep=set(keys))

    def _evict(self, keep: Collection[Key] = ()) -> None:
        excess = len(self._members) - self.max_cached_members
        if excess <= 0:
            return
        # Keep members with changes not yet committed (staged, or in a flush still being written): a reload
        # from storage would miss them and could unlock an achievement twice.
        dirty, flushing = self._batch.dirty, self._flushing
        for key in list(islice(self._members, excess * 2)):
            if excess <= 0:
                break
            if key not in keep and key not in dirty and key not in flushing and key not in self._member_loads:
                del self._members[key]
                for watch in self._eviction_watches:
                    watch.add(key)
                excess -= 1

    @contextmanager
    def _watching_evictions(self) -> Iterator[set[Key]]:
        """The members evicted while the block runs (it reads member rows from storage)."""
        watch: set[Key] = set()
        self._eviction_watches.append(watch)
        try:
            yield watch
        finally:
            self._eviction_watches.remove(watch)

    async def snapshot(self, guild_id: int, member_id: int) -> tuple[MemberStats, set[str]]:
        """The member's current stats and unlocks (including changes not yet flushed); copies."""
        state = self._members.get((guild_id, member_id))
        if state is None:
            return await self.storage.members.load(guild_id, member_id)
        return MemberStats(dict(state.stats.values), state.stats.last_active), set(state.unlocked)

    # ------------------------------------------------------------------ recording
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
            loading = [f for (g, _m), f in self._member_loads.items() if g == guild_id]
            if loading:
                await asyncio.gather(*loading, return_exceptions=True)
            await self.flush()
            try:
                yield
            finally:
                # Every path that changes a member waits at the gate after its last await, so nothing of this
                # guild was staged since the flush; what is cached may predate the change: reload it.
                staged = [k for k in self._batch.dirty if k[0] == guild_id]
                if staged:
                    log.error("guild %s: %d members changed during a pause; their changes are lost", guild_id,
                              len(staged))
                for key in [k for k in self._members if k[0] == guild_id]:
                    del self._members[key]
                self._guilds.pop(guild_id, None)  # the rulebook too: an edit's new points apply from the next activity
                self._epochs[guild_id] = self._epochs.get(guild_id, 0) + 1
        finally:
            del self._paused[guild_id]
            gate.set()

    async def _ready(self, guild_id: int, member_id: int) -> tuple[GuildState, MemberState]:
        """The guild's and member's cached state, returned with no await since the pause gate was checked,
        so the caller may change it synchronously and a bulk change can never be overwritten."""
        key = (guild_id, member_id)
        while True:
            guild = self._guilds.get(guild_id)
            state = self._members.get(key)
            if guild is not None and state is not None and guild_id not in self._paused:
                self._members.move_to_end(key)
                return guild, state
            if guild_id in self._paused:
                await self._gate(guild_id)
            elif guild is None:
                await self.guild(guild_id)
            else:
                await self.member(guild_id, member_id)

    async def record(self, activity: Activity, content: str | None = None) -> RecordResult:
        # The common case, a cached guild and member, takes no coroutine hop at all.
        guild_id = activity.guild_id
        key = (guild_id, activity.member_id)
        guild = self._guilds.get(guild_id)
        state = self._members.get(key)
        if guild is None or state is None or guild_id in self._paused:
            guild, state = await self._ready(guild_id, activity.member_id)
        else:
            self._members.move_to_end(key)
        return self._apply(guild, state, activity, content)

    def submit(self, activity: Activity, content: str | None = None) -> None:
        """Record an activity without waiting: the event listeners' path.

        A cached member is updated at once. Otherwise the activity waits, in order, until its member is
        loaded, so the event handler (and the message it holds) is done immediately instead of piling up
        while a burst of members not cached is loaded.
        """
        guild_id = activity.guild_id
        key = (guild_id, activity.member_id)
        guild = self._guilds.get(guild_id)
        state = self._members.get(key)
        if guild is not None and state is not None and guild_id not in self._paused and key not in self._waiting:
            self._members.move_to_end(key)
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
            await self.guild(guild_id)
            missing = list({a.member_id for a in activities if a.guild_id == guild_id
                            and (guild_id, a.member_id) not in self._members})
            for start in range(0, len(missing), 500):
                chunk = missing[start:start + 500]
                with self._watching_evictions() as evicted:
                    loaded = await self.storage.members.load_many(guild_id, chunk)
                for member_id in chunk:
                    key = (guild_id, member_id)
                    if key not in self._members and key not in evicted and key not in self._member_loads:
                        stats, unlocked = loaded.get(member_id) or (MemberStats(), set())
                        self._members[key] = MemberState(stats, unlocked)
        results = []
        for activity in activities:
            guild, state = await self._ready(activity.guild_id, activity.member_id)
            results.append(self._apply(guild, state, activity, None))
        self._evict()
        return results

    def _apply(self, guild: GuildState, state: MemberState, activity: Activity, content: str | None) -> RecordResult:
        # No await in here: nothing else can touch this member's state meanwhile.
        if activity.kind is ActivityKind.MESSAGE:
            if not passes_anti_spam(guild.settings, state.last_counted_message, activity.at, content):
                return RecordResult(counted=False)
            state.last_counted_message = activity.at
        day, hour = local_date_and_hour(activity.at, guild.tz)
        changed = apply_activity(state.stats, activity, day)
        evaluation = state.settle(guild.revoked.get(activity.member_id), lambda unlocked: evaluate(
            state.stats, unlocked, guild.rulebook, changed, activity.at, hour if activity.is_active else None,
            guild.tiers))
        self._stage(activity.guild_id, activity.member_id, state, guild, evaluation, activity.at,
                    activity.channel_id)
        return RecordResult(True, evaluation.unlocked, evaluation.tier_reached)

    def _stage(self, guild_id: int, member_id: int, state: MemberState, guild: GuildState,
               evaluation: Evaluation, at: datetime, channel_id: int | None) -> None:
        batch = self._batch
        batch.dirty.add((guild_id, member_id))
        if evaluation.unlocked or evaluation.tier_reached:
            for item in announcements_for(guild_id, member_id, state.stats, guild.tiers, evaluation, channel_id):
                batch.announcements.append(item)
            for achievement in evaluation.unlocked:
                batch.unlocks.append((guild_id, member_id, achievement.id, at))
            self._wake.set()  # unlocks are worth announcing promptly
        elif len(batch.dirty) >= self.max_batch:
            self._wake.set()

    async def grant(self, guild_id: int, member_id: int, achievement_id: str) -> RecordResult:
        """A moderator gives an achievement, whatever its condition; False if the member has it."""
        guild, state = await self._ready(guild_id, member_id)
        achievement = guild.rulebook.by_id.get(achievement_id)
        if achievement is None or achievement_id in state.unlocked:
            return RecordResult(counted=False)
        now = self.clock.now()
        old_points = state.stats.get("points")
        revoked = guild.revoked.get(member_id)
        if revoked and achievement_id in revoked:
            revoked.discard(achievement_id)  # a grant ends the revoke
            self._batch.revocations.append((guild_id, member_id, achievement_id, False))
        state.unlocked.add(achievement_id)
        state.stats.add("points", achievement.points)
        state.stats.add("achievements", 1)
        cascade = state.settle(revoked, lambda unlocked: evaluate(
            state.stats, unlocked, guild.rulebook, {"points", "achievements"}, now, None, guild.tiers))
        evaluation = Evaluation([achievement, *cascade.unlocked])
        evaluation.tier_reached = tier_change(old_points, state.stats.get("points"), guild.tiers)
        self._stage(guild_id, member_id, state, guild, evaluation, now, None)
        return RecordResult(True, evaluation.unlocked, evaluation.tier_reached)

    async def revoke(self, guild_id: int, member_id: int, achievement_id: str, points: int) -> bool:
        """Take an unlock back, with the points it gave; False if the member did not have it."""
        guild, state = await self._ready(guild_id, member_id)
        if achievement_id not in state.unlocked:
            return False
        state.unlocked.discard(achievement_id)
        guild.revoked.setdefault(member_id, set()).add(achievement_id)
        state.stats.values["points"] = max(0, state.stats.get("points") - points)
        state.stats.values["achievements"] = max(0, state.stats.get("achievements") - 1)
        batch = self._batch
        batch.dirty.add((guild_id, member_id))
        # An unlock not written yet is simply dropped, with its announcement; a written one is deleted.
        batch.unlocks = [u for u in batch.unlocks if u[:3] != (guild_id, member_id, achievement_id)]
        batch.announcements = [
            a for a in batch.announcements
            if not (a.guild_id == guild_id and a.member_id == member_id and a.kind == "unlock"
                    and a.payload.get("achievement_id") == achievement_id)
        ]
        batch.revocations.append((guild_id, member_id, achievement_id, True))
        self._wake.set()
        return True

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
            with self._watching_evictions() as evicted:
                rows = await self.storage.members.load_chunk(guild_id, after, chunk)
            if guild_id in self._paused or self._epochs.get(guild_id, 0) != epoch:
                continue  # a bulk change ran while the chunk was read: read it again
            if not rows:
                return await self._committed(total)
            guild = self._guilds.get(guild_id) or await self.guild(guild_id)
            if guild_id in self._paused or self._epochs.get(guild_id, 0) != epoch:
                continue
            # The achievements as they are now: an edit or a removal may have happened since the job began.
            targets = [guild.rulebook.by_id[i] for i in wanted if i in guild.rulebook.by_id]
            if not targets:
                return await self._committed(total)
            loading: list[int] = []
            for member_id, stats, unlocked in rows:
                key = (guild_id, member_id)
                state = self._members.get(key)
                if state is None:
                    if key in self._member_loads or key in evicted:
                        # Being loaded by an activity, or changed and evicted since this chunk was read (the
                        # row is older than what was flushed): evaluate once loaded afresh.
                        loading.append(member_id)
                        continue
                    state = MemberState(stats, unlocked)
                    self._members[key] = state
                total += self._reevaluate_one(guild_id, member_id, state, guild, now, targets)
            for member_id in loading:
                fresh_guild, state = await self._ready(guild_id, member_id)
                targets = [fresh_guild.rulebook.by_id[i] for i in wanted if i in fresh_guild.rulebook.by_id]
                total += self._reevaluate_one(guild_id, member_id, state, fresh_guild, now, targets)
            after = rows[-1][0]
            self._evict()
            await asyncio.sleep(0)

    async def _committed(self, total: int) -> int:
        # A finished walk is crossed off by its caller: its unlocks must be committed by then, or a crash
        # right after would lose them with nothing left to redo the walk.
        await self.flush()
        return total

    def _reevaluate_one(self, guild_id: int, member_id: int, state: MemberState, guild: GuildState, now: datetime,
                        achievements: Sequence[Achievement]) -> int:
        evaluation = state.settle(guild.revoked.get(member_id), lambda unlocked: evaluate_all(
            state.stats, unlocked, guild.rulebook, now, guild.tiers, achievements))
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
        states = [state for (g, _member), state in self._members.items() if g == guild_id]
        for start in range(0, len(states), 5000):
            for state in states[start:start + 5000]:
                close_day(state.stats, closed_day)
            await asyncio.sleep(0)
        async with self.storage.db.transaction() as conn:
            await self.storage.guilds.set_last_rollover(conn, guild_id, closed_day)
        if guild_id in self._guilds:
            settings = self._guilds[guild_id].settings
            self._guilds[guild_id].settings = replace(settings, last_rollover_date=closed_day)
        return reset

    # ------------------------------------------------------------------ flush
    async def flush(self) -> None:
        """Write everything staged, in transactions of at most `max_batch` members each.

        Bounded, so that after a failure (a full disk) a transaction that fits can still be written. A
        failed part and the parts after it go back in front of whatever arrived meanwhile; nothing is lost.
        """
        async with self._flush_lock:
            batch, self._batch = self._batch, _Batch()
            if not batch:
                return
            # Snapshot every row now, in step with the batch's unlocks: a member's stats row never runs
            # ahead of (or behind) the unlocks written beside it.
            rows: dict[Key, MemberStats] = {}
            for key in batch.dirty:
                state = self._members.get(key)
                if state is not None:
                    rows[key] = MemberStats(dict(state.stats.values), state.stats.last_active)
            parts = batch.split(self.max_batch)
            self._flushing, self._writing = batch.dirty, batch
            announced = False
            try:
                for n, part in enumerate(parts):
                    part_rows = [(g, m, rows[(g, m)]) for g, m in part.dirty if (g, m) in rows]
                    try:
                        # On the loop's own thread, with no await inside the transaction: neither a busy
                        # gateway nor a cancel can hold a commit up or cut it in two.
                        await self.storage.db.committed_inline(partial(self._write, part, part_rows))
                    except asyncio.CancelledError:
                        self._put_back(parts[n + 1:])  # this part is committed
                        raise
                    except BaseException:
                        self._put_back(parts[n:])
                        raise
                    announced = announced or bool(part.announcements)
            finally:
                self._flushing, self._writing = set(), _Batch()
                if announced:
                    await self._notify_committed()

    async def _write(self, part: _Batch, rows: list[tuple[int, int, MemberStats]], conn: Transaction) -> None:
        members = self.storage.members
        await members.save_stats(conn, rows)
        for guild_id, member_id, achievement_id, revoked in part.revocations:
            if revoked:
                await members.revoke_unlock(conn, guild_id, member_id, achievement_id, self.clock.now())
            else:
                await members.end_revocation(conn, guild_id, member_id, achievement_id)
        if part.unlocks:
            await members.insert_unlocks(conn, part.unlocks)
        if part.announcements:
            await self.storage.outbox.add(conn, part.announcements, self.clock.now())

    def _put_back(self, parts: Sequence[_Batch]) -> None:
        """Return unwritten parts in front of what was staged since, minus unlocks revoked meanwhile."""
        current = self._batch
        revoked_since = {change[:3] for change in current.revocations if change[3]}
        for part in reversed(parts):
            current.dirty |= part.dirty
            current.unlocks[:0] = [u for u in part.unlocks if u[:3] not in revoked_since]
            current.revocations[:0] = part.revocations
            current.announcements[:0] = part.announcements

    async def _notify_committed(self) -> None:
        for listener in self.committed_listeners:
            result = listener()
            if asyncio.iscoroutine(result):
                await result


def announcements_for(
    guild_id: int, member_id: int, stats: MemberStats, tiers: Sequence[Tier], evaluation: Evaluation,
    channel_id: int | None,
) -> list[NewAnnouncement]:
    total = stats.get("points")
    progress = tier_progress(total, tiers)
    common: dict[str, Any] = {
        "total_points": total,
        "tier": {"name": progress.current.name, "badge": progress.current.badge},
        "next_tier": (
            {"name": progress.next.name, "badge": progress.next.badge, "points": progress.next.points}
            if progress.next else None
        ),
        "tier_percent": progress.percent,
    }
    items = [
        NewAnnouncement(guild_id, member_id, "unlock", channel_id, {
            **common,
            "achievement_id": a.id, "name": a.name, "description": a.description, "points": a.points,
            "hidden": a.hidden, "role_id": a.role_id,
        })
        for a in evaluation.unlocked
    ]
    if evaluation.tier_reached is not None:
        old = tier_for(total - evaluation.points_gained, tiers)
        items.append(NewAnnouncement(guild_id, member_id, "tier", channel_id, {
            **common,
            "old_tier": {"name": old.name, "badge": old.badge},
            "new_tier": {"name": evaluation.tier_reached.name, "badge": evaluation.tier_reached.badge,
                         "role_id": evaluation.tier_reached.role_id},
        }))
    return items
