"""The member cache's eviction watch: a reader of stored rows learns of every member evicted while it read."""

from __future__ import annotations

from pathlib import Path

from bot.engine.stats import MemberStats
from bot.recording.members import MemberCache
from bot.recording.state import MemberState
from bot.storage import Storage

GUILD = 1001


def cache_member(cache: MemberCache, member_id: int) -> None:
    cache.add((GUILD, member_id), MemberState(MemberStats(), set()))
    cache.evict()


async def test_an_outer_watch_still_sees_evictions_after_an_inner_watch_with_the_same_members_ends(
    tmp_path: Path,
) -> None:
    """Two walks reading at once: the one that finishes first must not take the other's watch with it (the
    watches were removed by equality, and two watches that saw the same evictions are equal)."""
    storage = await Storage.open(tmp_path / "bot.db")
    cache = MemberCache(storage, max_cached=1, pinned=lambda _key: False)
    cache_member(cache, 1)
    with cache.watching_evictions() as first:
        with cache.watching_evictions():
            cache_member(cache, 2)  # evicts member 1: both watches saw it
        cache_member(cache, 3)  # evicts member 2 while the first walk still reads
        assert (GUILD, 2) in first
    await storage.close()
