"""Moderator input at the edges: calendar limits, look-alike names, timezones that are not places, and
limits that hold when two moderators act at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.engine.achievements import Achievement
from bot.engine.conditions import parse_condition
from bot.errors import UserFacingError
from bot.management import MAX_ACHIEVEMENTS, MAX_TIERS, timezone_names
from tests.management_support import GUILD, MODERATOR, START, Bot, open_bot
from tests.support.backends import Backend


@pytest.fixture
async def bot(backend: Backend) -> AsyncIterator[Bot]:
    opened = await open_bot(await backend.target())
    yield opened
    await opened.close()


async def add(bot: Bot, name: str, **options: object) -> object:
    return await bot.management.add_achievement(
        GUILD, MODERATOR, name=name, description="Test.", points=5, condition="messages >= 3",
        **options,  # type: ignore[arg-type]
    )


async def achievement_names(bot: Bot) -> list[str]:
    return [a.name for a in await bot.storage.achievements.list(GUILD)]


@pytest.mark.parametrize(("option", "value"), [("ends", "9999-12-31"), ("starts", "0001-01-01")])
async def test_a_date_at_the_edge_of_the_calendar_is_refused_with_the_years_allowed(
    bot: Bot, option: str, value: str
) -> None:
    await bot.management.update_settings(GUILD, MODERATOR, timezone="Asia/Tokyo")
    before = await achievement_names(bot)

    with pytest.raises(UserFacingError, match="use a year from 2000 to 2999"):
        await add(bot, "Millennium", **{option: value})
    assert await achievement_names(bot) == before


async def test_a_name_differing_only_in_accented_case_is_taken(bot: Bot) -> None:
    await add(bot, "école")

    with pytest.raises(UserFacingError, match="already exists"):
        await add(bot, "ÉCOLE")
    assert (await achievement_names(bot)).count("école") == 1


@pytest.mark.parametrize("name", ["Chatter\u200bbox", "\u200b\u200b", "\u202eEvil", "Tab\u0007Bell", "\u3164"])
async def test_invisible_and_direction_changing_names_are_refused(bot: Bot, name: str) -> None:
    before = await achievement_names(bot)

    with pytest.raises(UserFacingError, match=r"invisible|control|visible"):
        await add(bot, name)
    assert await achievement_names(bot) == before


async def test_a_name_of_combining_marks_only_is_refused(bot: Bot) -> None:
    with pytest.raises(UserFacingError, match="at least one visible"):
        await add(bot, "\u0301\u0301")


async def test_a_name_with_accents_and_emoji_is_accepted(bot: Bot) -> None:
    await add(bot, "Café 👩‍💻 Ωmega")
    assert "Café 👩‍💻 Ωmega" in await achievement_names(bot)


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "posix/Europe/Paris", "right/UTC"])
async def test_timezone_entries_that_are_not_places_are_refused(bot: Bot, zone: str) -> None:
    with pytest.raises(UserFacingError, match="not a timezone I know"):
        await bot.management.update_settings(GUILD, MODERATOR, timezone=zone)
    assert (await bot.recorder.guild(GUILD)).settings.timezone == "UTC"
    assert zone not in timezone_names()


async def test_a_tier_name_differing_only_in_accented_case_replaces_the_tier(bot: Bot) -> None:
    await bot.management.set_tier(GUILD, MODERATOR, "école", 50, "🏫")
    _, replaced = await bot.management.set_tier(GUILD, MODERATOR, "ÉCOLE", 60, "🏫")

    assert [t.name for t in replaced] == ["école"]
    assert [t.name for t in await bot.storage.tiers.list(GUILD)].count("ÉCOLE") == 1
    assert "école" not in [t.name for t in await bot.storage.tiers.list(GUILD)]


async def test_two_tiers_set_at_once_at_nineteen_tiers_stop_at_twenty(bot: Bot) -> None:
    existing = len(await bot.storage.tiers.list(GUILD))
    for n in range(MAX_TIERS - 1 - existing):
        await bot.management.set_tier(GUILD, MODERATOR, f"Level {n}", 10_000 + n, "⭐")

    results = await asyncio.gather(
        bot.management.set_tier(GUILD, MODERATOR, "Alpha", 90_000, "🅰️"),
        bot.management.set_tier(GUILD, MODERATOR, "Beta", 91_000, "🅱️"),
        return_exceptions=True,
    )

    assert len(await bot.storage.tiers.list(GUILD)) == MAX_TIERS
    refused = [r for r in results if isinstance(r, UserFacingError)]
    assert len(refused) == 1 and f"at most {MAX_TIERS} tiers" in str(refused[0])


async def test_two_tier_removals_at_once_leave_one_tier(bot: Bot) -> None:
    tiers = await bot.storage.tiers.list(GUILD)
    for tier in tiers[2:]:
        await bot.management.remove_tier(GUILD, MODERATOR, tier.name)

    results = await asyncio.gather(
        *(bot.management.remove_tier(GUILD, MODERATOR, t.name) for t in tiers[:2]), return_exceptions=True,
    )

    assert len(await bot.storage.tiers.list(GUILD)) == 1
    assert sum(isinstance(r, UserFacingError) for r in results) == 1


async def test_a_server_cannot_have_more_than_the_achievement_cap(bot: Bot) -> None:
    existing = len(await bot.storage.achievements.list(GUILD))
    async with bot.storage.db.transaction() as conn:
        for n in range(MAX_ACHIEVEMENTS - existing):
            filler = Achievement(f"filler-{n}", f"Filler {n}", "Fill.", 1, parse_condition(f"messages >= {n + 5}"))
            await bot.storage.achievements.save(conn, GUILD, filler, START)
    await bot.recorder.reload_guild(GUILD)

    with pytest.raises(UserFacingError, match=f"at most {MAX_ACHIEVEMENTS} achievements"):
        await add(bot, "One Too Many")
    assert len(await bot.storage.achievements.list(GUILD)) == MAX_ACHIEVEMENTS


async def test_custom_stat_names_are_listed_once_each_in_order(bot: Bot) -> None:
    for member, stat in [(1, "tasks"), (2, "quests"), (3, "tasks"), (4, "art")]:
        await bot.management.add_stat(GUILD, MODERATOR, member, stat, 1)

    assert await bot.storage.members.custom_stat_names(GUILD) == ["art", "quests", "tasks"]
