"""The card cache: a card is drawn once per drawn data, redrawn when the data changes, and bounded."""

from __future__ import annotations

import asyncio
import threading

from bot.cards import ProfileCards
from tests.cards.support import SAMPLE, sample_avatar, with_


class Avatars:
    """Counts avatar fetches; fails when told to, as the CDN may."""

    def __init__(self, fail: bool = False) -> None:
        self.fetches = 0
        self.fail = fail

    async def read(self) -> bytes:
        self.fetches += 1
        if self.fail:
            raise OSError("CDN unavailable")
        return sample_avatar()


async def test_a_cache_hit_returns_the_same_bytes_without_rendering_or_fetching() -> None:
    cards, avatars = ProfileCards(), Avatars()
    first = await cards.card(SAMPLE, avatars.read)
    second = await cards.card(SAMPLE, avatars.read)

    assert second is first
    assert cards.renders == 1 and avatars.fetches == 1
    cards.close()


async def test_changed_data_renders_a_new_card() -> None:
    cards, avatars = ProfileCards(), Avatars()
    before = await cards.card(SAMPLE, avatars.read)
    for change in ({"points": 736}, {"rank": 2}, {"streak": 7}, {"latest": ("New One", *SAMPLE.latest[:2])},
                   {"display_name": "Ada"}, {"tier_name": "Master"}):
        after = await cards.card(with_(**change), avatars.read)
        assert after != before, change
    await cards.card(with_(avatar_key="new-hash"), avatars.read)  # a new avatar is fetched and drawn
    assert cards.renders == 8 and avatars.fetches == 8
    cards.close()


async def test_the_cache_keeps_only_the_latest_cards() -> None:
    cards = ProfileCards(cache_size=2)
    for points in (1, 2, 3):
        await cards.card(with_(points=points), None)
    await cards.card(with_(points=3), None)
    assert cards.renders == 3
    await cards.card(with_(points=1), None)  # evicted: drawn again
    assert cards.renders == 4
    cards.close()


async def test_a_card_drawn_without_its_avatar_because_the_cdn_failed_is_not_kept() -> None:
    cards, failing = ProfileCards(), Avatars(fail=True)
    await cards.card(SAMPLE, failing.read)
    await cards.card(SAMPLE, failing.read)

    assert cards.renders == 2 and failing.fetches == 2
    cards.close()


async def test_cards_are_drawn_off_the_event_loop_thread() -> None:
    cards = ProfileCards()
    seen: list[str] = []
    original = cards._executor.submit

    def submit(fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        def traced(*a, **k):  # type: ignore[no-untyped-def]
            seen.append(threading.current_thread().name)
            return fn(*a, **k)
        return original(traced, *args, **kwargs)

    cards._executor.submit = submit  # type: ignore[method-assign]
    await asyncio.gather(*(cards.card(with_(points=p), None) for p in range(3)))
    assert seen and all(name.startswith("profile-card") for name in seen)
    cards.close()
