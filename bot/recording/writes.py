"""The write-behind batcher: changes staged in memory, written by a background flush with group commit.

A flush writes one transaction per part of at most `max_batch` members (bounded, so that after a failure
such as a full disk a transaction that fits can still be written); an unlock and its announcement rows are
written in the same transaction as the member's stats row, and the committed listeners (the announcer) are
woken only after that commit. A part that fails goes back in front of what was staged since: nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from bot.clock import Clock
from bot.engine.stats import MemberStats
from bot.recording.state import Key
from bot.storage import NewAnnouncement, Storage, Transaction

log = logging.getLogger(__name__)


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


class WriteBehind:
    """`row(key)` gives a member's stats as they are now (a copy), or None if the member is not in memory."""

    def __init__(
        self, storage: Storage, clock: Clock, row: Callable[[Key], MemberStats | None], *,
        flush_interval: float, max_batch: int,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.coalesce_delay = min(0.05, flush_interval)
        self.committed_listeners: list[Callable[[], Awaitable[None] | None]] = []
        self._row = row
        self._batch = _Batch()
        self._flushing: set[Key] = set()  # members of the batch a flush is writing
        self._writing = _Batch()  # the batch a flush is writing
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # ------------------------------------------------------------------ staging (synchronous)
    def stage(
        self, key: Key, unlocks: Sequence[tuple[str, datetime]], announcements: Sequence[NewAnnouncement]
    ) -> None:
        """The member's stats changed, maybe with unlocks and their announcements."""
        batch = self._batch
        batch.dirty.add(key)
        if unlocks or announcements:
            batch.announcements.extend(announcements)
            batch.unlocks.extend((*key, achievement_id, at) for achievement_id, at in unlocks)
            self._wake.set()  # unlocks are worth announcing promptly
        elif len(batch.dirty) >= self.max_batch:
            self._wake.set()

    def stage_revoke(self, key: Key, achievement_id: str) -> None:
        """An unlock not written yet is simply dropped, with its announcement; a written one is deleted."""
        guild_id, member_id = key
        batch = self._batch
        batch.dirty.add(key)
        batch.unlocks = [u for u in batch.unlocks if u[:3] != (guild_id, member_id, achievement_id)]
        batch.announcements = [
            a for a in batch.announcements
            if not (a.guild_id == guild_id and a.member_id == member_id and a.kind == "unlock"
                    and a.payload.get("achievement_id") == achievement_id)
        ]
        batch.revocations.append((guild_id, member_id, achievement_id, True))
        self._wake.set()

    def stage_end_of_revoke(self, key: Key, achievement_id: str) -> None:
        self._batch.revocations.append((*key, achievement_id, False))

    def holds(self, key: Key) -> bool:
        """Whether the member has changes not committed yet (staged, or in a flush still being written)."""
        return key in self._batch.dirty or key in self._flushing

    def staged_in(self, guild_id: int) -> list[Key]:
        return [k for k in self._batch.dirty if k[0] == guild_id]

    def pending_revocations(self, guild_id: int) -> Iterator[tuple[int, str, bool]]:
        """Revokes and grants of `guild_id` not committed yet, in the order they happened."""
        for batch in (self._writing, self._batch):
            for g, member_id, achievement_id, is_revoke in batch.revocations:
                if g == guild_id:
                    yield member_id, achievement_id, is_revoke

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="recorder-flush")

    async def close(self) -> None:
        """Stop the background flush and write everything still staged.

        The flush task is asked to stop, not cancelled: a cancel arriving while its COMMIT runs would look
        like a failure, and the batch (announcements included) would be written a second time."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    async def _loop(self) -> None:
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

    # ------------------------------------------------------------------ flush
    async def flush(self) -> None:
        """Write everything staged, in transactions of at most `max_batch` members each."""
        async with self._lock:
            batch, self._batch = self._batch, _Batch()
            if not batch:
                return
            # Snapshot every row now, in step with the batch's unlocks: a member's stats row never runs
            # ahead of (or behind) the unlocks written beside it.
            rows: dict[Key, MemberStats] = {}
            for key in batch.dirty:
                row = self._row(key)
                if row is not None:
                    rows[key] = row
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
