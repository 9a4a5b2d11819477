"""Profile cards for the bot: card data from a Profile, rendering in worker threads, and an LRU cache of PNGs."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from bot.cards._card import CardData, render_card
from bot.engine.leaderboard import top_percent
from bot.profiles import Profile

log = logging.getLogger(__name__)

CACHE_SIZE = 512  # cards of ~50-80 kB: tens of MB at most
LATEST_SHOWN = 3


def card_data(profile: Profile, display_name: str, avatar_key: str | None) -> CardData:
    tier = profile.tier
    return CardData(
        display_name=display_name,
        avatar_key=avatar_key,
        tier_name=tier.current.name,
        tier_badge=tier.current.badge,
        points=profile.points,
        next_tier_name=tier.next.name if tier.next else None,
        next_tier_points=tier.next.points if tier.next else None,
        tier_percent=tier.percent,
        rank=profile.rank,
        members=profile.members,
        top_text=top_percent(profile.rank, profile.members) if profile.rank else "",
        streak=profile.streak,
        best_streak=profile.best_streak,
        latest=tuple(s.achievement.name for s in profile.latest[:LATEST_SHOWN]),
    )


class ProfileCards:
    """Renders cards in a small thread pool (Pillow releases the GIL while it resamples and encodes) and keeps
    the latest CACHE_SIZE of them, keyed on everything a card draws: changed data is a different key."""

    def __init__(self, cache_size: int = CACHE_SIZE, workers: int = 2) -> None:
        self.cache_size = cache_size
        self._cache: OrderedDict[CardData, bytes] = OrderedDict()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="profile-card")
        self.renders = 0

    async def card(self, data: CardData, fetch_avatar: Callable[[], Awaitable[bytes]] | None) -> bytes:
        """The card's PNG: from the cache, or rendered off the event loop after fetching the avatar."""
        cached = self._cache.get(data)
        if cached is not None:
            self._cache.move_to_end(data)
            return cached
        avatar: bytes | None = None
        fetched = fetch_avatar is None
        if fetch_avatar is not None:
            try:
                avatar = await fetch_avatar()
                fetched = True
            except Exception as exc:
                log.warning("could not fetch the avatar for a profile card (%s); drawing initials instead", exc)
        png = await asyncio.get_running_loop().run_in_executor(self._executor, render_card, data, avatar)
        self.renders += 1
        if fetched:  # a card drawn without the avatar because the CDN failed is not kept: next time may work
            self._cache[data] = png
            self._cache.move_to_end(data)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return png

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
