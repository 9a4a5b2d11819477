"""Activity tracking through the simulator: messages, reactions, logins and streaks, presence, anti-spam."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import AchievementsBot, running
from bot.clock import FakeClock
from bot.settings import Settings, load_settings
from discord_sim import DiscordSimulator
from tests.e2e.activity_support import stats_of, unlocked, wait_stat
from tests.e2e.conftest import Community


async def post(simulator: DiscordSimulator, community: Community, author_id: int, count: int = 1) -> list[str]:
    """`author_id` posts `count` messages in #general; returns their ids."""
    return [
        (await simulator.send_message(community.general.id, author_id, f"message {i}"))["id"] for i in range(count)
    ]


# ------------------------------------------------------------------ messages
async def test_messages_count_for_their_author(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await post(simulator, community, community.alice.id, 3)
    stats = await wait_stat(simulator, running_bot, community.id, community.alice.id, "messages", 3)
    assert stats["logins"] == 1
    assert stats["streak"] == 1


async def test_ten_messages_unlock_chatterbox(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await post(simulator, community, community.alice.id, 10)
    await wait_stat(simulator, running_bot, community.id, community.alice.id, "messages", 10)
    assert {"first-step", "chatterbox"} <= await unlocked(running_bot, community.id, community.alice.id)


async def test_messages_of_bots_webhooks_dms_and_system_messages_do_not_count(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    helper = simulator.create_user("helper-bot", bot=True)
    simulator.add_member(community.id, helper.id)
    world = simulator.world
    general = world.channels[community.general.id]
    await simulator.send_message(community.general.id, helper.id, "beep")
    webhook_post = world.create_message(general, world.users[community.bob.id], {"content": "hook"}, webhook_id=424242)
    world.dispatch_message("MESSAGE_CREATE", webhook_post)
    pin_notice = world.create_message(general, world.users[community.bob.id], {"content": ""}, message_type=6)
    world.dispatch_message("MESSAGE_CREATE", pin_notice)
    await simulator.send_message(simulator.dm_channel_id(community.bob.id), community.bob.id, "hi bot")
    # A real message afterwards: once it is counted, the events before it have been handled too.
    await simulator.send_message(community.general.id, community.alice.id, "hello")
    await wait_stat(simulator, running_bot, community.id, community.alice.id, "messages", 1)

    assert await stats_of(running_bot, community.id, community.bob.id) == {}
    assert await stats_of(running_bot, community.id, helper.id) == {}


@pytest.fixture
def settings_without_content(bot_settings: Settings, simulator: DiscordSimulator, tmp_path: Path) -> Settings:
    return load_settings({
        "DISCORD_TOKEN": simulator.token,
        "DATABASE_PATH": str(bot_settings.database_path),
        "DISCORD_API_BASE": simulator.api_base,
        "DISCORD_GATEWAY_URL": simulator.gateway_url,
        "PRIVILEGED_INTENTS": "members",
    })


@pytest.fixture
async def bot_without_content(
    settings_without_content: Settings, clock: FakeClock, community: Community
) -> AsyncIterator[AchievementsBot]:
    async with running(settings_without_content, clock=clock, ready_timeout=15, guild_ready_timeout=0.1) as bot:
        yield bot


async def test_messages_count_without_the_message_content_intent_even_with_a_minimum_length(
    bot_without_content: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await bot_without_content.management.update_settings(community.id, community.moderator.id, anti_spam_min_length=20)
    await post(simulator, community, community.alice.id, 2)
    await wait_stat(simulator, bot_without_content, community.id, community.alice.id, "messages", 2)


async def test_anti_spam_cooldown_stops_a_flood_from_counting(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    await running_bot.management.update_settings(community.id, community.moderator.id, anti_spam_cooldown=30)
    await post(simulator, community, community.alice.id, 5)
    await simulator.send_message(community.general.id, community.bob.id, "barrier")
    await wait_stat(simulator, running_bot, community.id, community.bob.id, "messages", 1)
    assert (await stats_of(running_bot, community.id, community.alice.id))["messages"] == 1

    clock.advance(timedelta(seconds=31))
    await post(simulator, community, community.alice.id, 2)
    await wait_stat(simulator, running_bot, community.id, community.alice.id, "messages", 2)


async def test_anti_spam_minimum_length_ignores_short_messages_when_content_is_visible(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await running_bot.management.update_settings(community.id, community.moderator.id, anti_spam_min_length=5)
    await simulator.send_message(community.general.id, community.alice.id, "k")
    await simulator.send_message(community.general.id, community.alice.id, "that makes sense")
    await simulator.send_message(community.general.id, community.bob.id, "barrier message")
    await wait_stat(simulator, running_bot, community.id, community.bob.id, "messages", 1)
    assert (await stats_of(running_bot, community.id, community.alice.id))["messages"] == 1


# ------------------------------------------------------------------ reactions
async def test_a_reaction_counts_as_given_for_the_reactor_and_received_for_the_author(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    [message_id] = await post(simulator, community, community.alice.id)
    await simulator.add_reaction(community.general.id, message_id, community.bob.id, "👍")
    await wait_stat(simulator, running_bot, community.id, community.bob.id, "reactions_given", 1)
    await wait_stat(simulator, running_bot, community.id, community.alice.id, "reactions_received", 1)


async def test_reacting_to_ones_own_message_counts_nothing(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    [own] = await post(simulator, community, community.alice.id)
    [bobs] = await post(simulator, community, community.bob.id)
    await simulator.add_reaction(community.general.id, own, community.alice.id, "👍")
    await simulator.add_reaction(community.general.id, bobs, community.alice.id, "🎉")
    await wait_stat(simulator, running_bot, community.id, community.alice.id, "reactions_given", 1)
    assert (await stats_of(running_bot, community.id, community.alice.id)).get("reactions_received", 0) == 0


async def test_removing_a_self_reaction_takes_nothing_away(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    [own] = await post(simulator, community, community.alice.id)
    [bobs] = await post(simulator, community, community.bob.id)
    await simulator.add_reaction(community.general.id, bobs, community.alice.id, "🎉")
    await simulator.add_reaction(community.general.id, own, community.alice.id, "👍")
    await simulator.remove_reaction(community.general.id, own, community.alice.id, "👍")
    await post(simulator, community, community.alice.id)
    await wait_stat(simulator, running_bot, community.id, community.alice.id, "messages", 2)
    assert (await stats_of(running_bot, community.id, community.alice.id))["reactions_given"] == 1


async def test_reactions_by_bots_count_for_nobody(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    helper = simulator.create_user("helper-bot", bot=True)
    simulator.add_member(community.id, helper.id)
    [message_id] = await post(simulator, community, community.alice.id)
    await simulator.add_reaction(community.general.id, message_id, helper.id, "🤖")
    await simulator.add_reaction(community.general.id, message_id, community.bob.id, "👍")
    await wait_stat(simulator, running_bot, community.id, community.alice.id, "reactions_received", 1)
    assert await stats_of(running_bot, community.id, helper.id) == {}


async def test_removing_a_reaction_lowers_the_counts_but_keeps_the_unlock(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    [message_id] = await post(simulator, community, community.alice.id)
    emojis = ["👍", "🎉", "❤️", "😂", "🔥", "👀", "🙏", "💯", "✅", "🚀"]
    for emoji in emojis:
        await simulator.add_reaction(community.general.id, message_id, community.bob.id, emoji)
    await wait_stat(simulator, running_bot, community.id, community.bob.id, "reactions_given", 10)
    assert "appreciator" in await unlocked(running_bot, community.id, community.bob.id)

    await simulator.remove_reaction(community.general.id, message_id, community.bob.id, "🚀")
    await wait_stat(simulator, running_bot, community.id, community.bob.id, "reactions_given", 9)
    await wait_stat(simulator, running_bot, community.id, community.alice.id, "reactions_received", 9)
    assert "appreciator" in await unlocked(running_bot, community.id, community.bob.id)


async def test_reacting_and_unreacting_again_and_again_does_not_farm_received_reactions(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    [message_id] = await post(simulator, community, community.alice.id)
    for _ in range(3):
        await simulator.add_reaction(community.general.id, message_id, community.bob.id, "👍")
        await simulator.remove_reaction(community.general.id, message_id, community.bob.id, "👍")
    await simulator.add_reaction(community.general.id, message_id, community.bob.id, "🎉")
    await post(simulator, community, community.bob.id)
    await wait_stat(simulator, running_bot, community.id, community.bob.id, "messages", 1)
    assert (await stats_of(running_bot, community.id, community.alice.id))["reactions_received"] == 1
    assert (await stats_of(running_bot, community.id, community.bob.id))["reactions_given"] == 1


# ------------------------------------------------------------------ logins, streaks, presence
async def test_first_activity_on_a_new_day_counts_a_login_and_extends_the_streak(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    await post(simulator, community, community.alice.id, 2)
    await wait_stat(simulator, running_bot, community.id, community.alice.id, "messages", 2)

    clock.advance(timedelta(days=1))
    await post(simulator, community, community.alice.id, 2)
    stats = await wait_stat(simulator, running_bot, community.id, community.alice.id, "messages", 4)
    assert (stats["logins"], stats["streak"], stats["best_streak"]) == (2, 2, 2)


async def test_a_new_day_starts_at_the_guilds_local_midnight(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    await running_bot.management.update_settings(community.id, community.moderator.id, timezone="Asia/Kathmandu")
    # 12:00 UTC is 17:45 in Kathmandu (UTC+05:45); 18:20 UTC the same UTC day is already tomorrow there.
    await post(simulator, community, community.alice.id)
    await wait_stat(simulator, running_bot, community.id, community.alice.id, "messages", 1)
    clock.advance(timedelta(hours=6, minutes=20))
    await post(simulator, community, community.alice.id)
    stats = await wait_stat(simulator, running_bot, community.id, community.alice.id, "messages", 2)
    assert (stats["logins"], stats["streak"]) == (2, 2)


async def test_a_day_missed_starts_the_streak_again_but_keeps_the_best(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    for day in range(3):
        clock.advance(timedelta(days=1 if day else 0))
        await post(simulator, community, community.alice.id)
        await wait_stat(simulator, running_bot, community.id, community.alice.id, "messages", day + 1)
    clock.advance(timedelta(days=2))
    await post(simulator, community, community.alice.id)
    stats = await wait_stat(simulator, running_bot, community.id, community.alice.id, "messages", 4)
    assert (stats["logins"], stats["streak"], stats["best_streak"]) == (4, 1, 3)


async def test_coming_online_counts_as_a_login_with_the_presences_intent(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await simulator.set_presence(community.id, community.alice.id, "online")
    stats = await wait_stat(simulator, running_bot, community.id, community.alice.id, "logins", 1)
    assert stats["streak"] == 1
    assert stats.get("messages", 0) == 0


async def test_a_received_reaction_alone_is_not_a_login(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    [message_id] = await post(simulator, community, community.alice.id)
    await wait_stat(simulator, running_bot, community.id, community.alice.id, "logins", 1)
    clock.advance(timedelta(days=1))
    await simulator.add_reaction(community.general.id, message_id, community.bob.id, "👍")
    stats = await wait_stat(simulator, running_bot, community.id, community.alice.id, "reactions_received", 1)
    assert stats["logins"] == 1
