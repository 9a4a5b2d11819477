"""One owner per guild: which guilds this process may record, roll over and announce for."""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord sends a guild's events and interactions to (its documented formula)."""
    return (guild_id >> 22) % shard_count


class Ownership:
    """The guilds on this process's shards. Only the owner of a guild records its activity, runs its
    rollovers and retroactive jobs and posts its announcements, so that processes sharing one database never
    count or announce anything twice. Ownership ends for good with `give_up()` (the shard lease was lost):
    from then on the process owns nothing, whatever its settings say."""

    def __init__(self, shard_count: int | None = None, shard_ids: Iterable[int] | None = None) -> None:
        if shard_ids is not None and shard_count is None:
            raise ValueError("shard ids need a shard count")
        self.shard_count = shard_count
        # None: every shard, i.e. every guild (one process, or the shard count is Discord's to choose).
        self.shard_ids = frozenset(shard_ids) if shard_ids is not None else None
        if shard_count is not None and self.shard_ids is not None and self.shard_ids >= set(range(shard_count)):
            self.shard_ids = None
        self._given_up = False

    @classmethod
    def everything(cls) -> Ownership:
        """One process owning every guild: SQLite, tests, the sandbox and the benchmarks."""
        return cls()

    @property
    def owns_everything(self) -> bool:
        return not self._given_up and self.shard_ids is None

    @property
    def owns_nothing(self) -> bool:
        return self._given_up

    @property
    def shards(self) -> tuple[int, frozenset[int]] | None:
        """(shard count, shard ids) for a query to keep to this process's guilds; None when it owns them all
        (check `owns_nothing` first: a process that gave up its shards owns no guild at all)."""
        if self.shard_ids is None or self.shard_count is None:
            return None
        return self.shard_count, self.shard_ids

    @property
    def syncs_commands(self) -> bool:
        """Whether this process syncs slash commands. Commands belong to the application, not to a shard: of
        processes sharing one database, only shard 0's owner syncs them, so they never race to."""
        return not self._given_up and (self.shard_ids is None or 0 in self.shard_ids)

    def owns(self, guild_id: int) -> bool:
        if self._given_up:
            return False
        if self.shard_ids is None or self.shard_count is None:
            return True
        return shard_of(guild_id, self.shard_count) in self.shard_ids

    def give_up(self) -> None:
        """Own nothing from now on: another process may take these shards over."""
        self._given_up = True

    def __repr__(self) -> str:
        if self._given_up:
            return "Ownership(nothing)"
        if self.shard_ids is None:
            return f"Ownership(every shard of {self.shard_count or 'the recommended count'})"
        return f"Ownership(shards {sorted(self.shard_ids)} of {self.shard_count})"
