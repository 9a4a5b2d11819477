"""The member cache: members' stats and unlocks in memory, loaded in batches, evicted least recently used."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice

from bot.engine.stats import MemberStats
from bot.recording.state import Key, MemberState
from bot.storage import Storage

log = logging.getLogger(__name__)

MEMBER_LOAD_BATCH = 500  # members loaded per query (SQLite binds them as parameters)


class MemberCache:
    """At most `max_cached` members, except those `pinned` (changes not committed yet), which are never evicted:
    a reload from storage would miss their changes and could unlock an achievement twice.

    The eviction watch: a caller that reads member rows from storage while others may be evicted learns which
    were (`watching_evictions`). A row read before such a member's last flush is older than what was evicted,
    so it must not be cached."""

    def __init__(self, storage: Storage, *, max_cached: int, pinned: Callable[[Key], bool]) -> None:
        self.storage = storage
        self.max_cached = max_cached
        self._pinned = pinned
        self._states: OrderedDict[Key, MemberState] = OrderedDict()
        self._loads: dict[Key, asyncio.Future[MemberState]] = {}
        self._queue: dict[int, list[int]] = {}  # guild id -> member ids waiting for a batched load
        self._loader: asyncio.Task[None] | None = None
        self._watches: list[set[Key]] = []

    def __contains__(self, key: Key) -> bool:
        return key in self._states

    def __len__(self) -> int:
        return len(self._states)

    def get(self, key: Key) -> MemberState | None:
        return self._states.get(key)

    def touch(self, key: Key) -> None:
        """Mark as recently used."""
        self._states.move_to_end(key)

    def loading(self, key: Key) -> bool:
        return key in self._loads

    def add(self, key: Key, state: MemberState) -> MemberState:
        """Cache `state` unless the member is cached already; returns the cached one."""
        return self._states.setdefault(key, state)

    def forget(self, key: Key) -> None:
        """Drop one member from memory, as a restart would (its changes must be committed)."""
        self._states.pop(key, None)

    def drop_guild(self, guild_id: int) -> None:
        for key in [k for k in self._states if k[0] == guild_id]:
            del self._states[key]

    def of_guild(self, guild_id: int) -> list[MemberState]:
        return [state for (g, _member), state in self._states.items() if g == guild_id]

    def loads_of(self, guild_id: int) -> list[asyncio.Future[MemberState]]:
        return [f for (g, _m), f in self._loads.items() if g == guild_id]

    async def load(self, guild_id: int, member_id: int) -> None:
        """Return once the member is cached or was, with the queued batch it was in, loaded and maybe evicted
        again: callers look it up afresh (only a cached state may be changed, or the change is never flushed)."""
        key = (guild_id, member_id)
        if key in self._states:
            return
        pending = self._loads.get(key)
        if pending is None:
            # Loaded in batches by one task: a burst of members not cached (a busy guild after a restart)
            # costs a few queries per few hundred members instead of three per member.
            pending = asyncio.get_running_loop().create_future()
            self._loads[key] = pending
            self._queue.setdefault(guild_id, []).append(member_id)
            if self._loader is None or self._loader.done():
                self._loader = asyncio.create_task(self._load_queued(), name="recorder-member-loads")
        await asyncio.shield(pending)

    async def _load_queued(self) -> None:
        while self._queue:
            guild_id, queued = next(iter(self._queue.items()))
            batch = queued[:MEMBER_LOAD_BATCH]
            if len(queued) > MEMBER_LOAD_BATCH:
                self._queue[guild_id] = queued[MEMBER_LOAD_BATCH:]
            else:
                del self._queue[guild_id]
            keys = [(guild_id, member_id) for member_id in batch]
            try:
                loaded = await self.storage.members.load_many(guild_id, batch)
            except BaseException as exc:
                cancelled = isinstance(exc, asyncio.CancelledError)
                if cancelled:
                    keys += [(g, m) for g, ids in self._queue.items() for m in ids]
                    self._queue.clear()
                for key in keys:
                    pending = self._loads.pop(key)
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
                state = self._states.get(key)  # someone may have inserted it meanwhile (retroactive walk)
                if state is None:
                    stats, unlocked = loaded.get(member_id) or (MemberStats(), set())
                    state = self._states[key] = MemberState(stats, unlocked)
                self._loads.pop(key).set_result(state)
            self.evict(keep=set(keys))

    async def load_missing(self, guild_id: int, member_ids: Sequence[int]) -> None:
        """Cache the members of `member_ids` not cached yet, a few hundred per query (bulk recording)."""
        missing = list(dict.fromkeys(m for m in member_ids if (guild_id, m) not in self._states))
        for start in range(0, len(missing), MEMBER_LOAD_BATCH):
            chunk = missing[start:start + MEMBER_LOAD_BATCH]
            with self.watching_evictions() as evicted:
                loaded = await self.storage.members.load_many(guild_id, chunk)
            for member_id in chunk:
                key = (guild_id, member_id)
                if key not in self._states and key not in evicted and key not in self._loads:
                    stats, unlocked = loaded.get(member_id) or (MemberStats(), set())
                    self._states[key] = MemberState(stats, unlocked)

    def evict(self, keep: Collection[Key] = ()) -> None:
        excess = len(self._states) - self.max_cached
        if excess <= 0:
            return
        for key in list(islice(self._states, excess * 2)):
            if excess <= 0:
                break
            if key not in keep and not self._pinned(key) and key not in self._loads:
                del self._states[key]
                for watch in self._watches:
                    watch.add(key)
                excess -= 1

    @contextmanager
    def watching_evictions(self) -> Iterator[set[Key]]:
        """The members evicted while the block runs (it reads member rows from storage)."""
        watch: set[Key] = set()
        self._watches.append(watch)
        try:
            yield watch
        finally:
            # By identity: list.remove compares sets by value, and two watches that saw the same evictions are
            # equal, so it could end another reader's watch while that reader still reads.
            self._watches = [w for w in self._watches if w is not watch]
