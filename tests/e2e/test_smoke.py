"""First end-to-end checks: the bot logs in, syncs its commands and announces an unlock."""

from __future__ import annotations

from bot.app import AchievementsBot
from discord_sim import DiscordSimulator
from tests.e2e.conftest import Community


async def test_login_syncs_the_slash_commands_to_the_dev_guild(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    names = {c["name"] for c in simulator.synced_commands(community.id)}
    assert {"profile", "leaderboard", "achievements", "achievement", "stat", "tier", "settings"} <= names


async def test_first_message_unlocks_first_step_and_announces_it(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await simulator.send_message(community.general.id, community.alice.id, "hello everyone")
    messages = await simulator.wait_for(lambda: simulator.channel_messages(community.general.id))
    announcement = messages[0]
    assert announcement["content"] == f"<@{community.alice.id}>"
    embed = announcement["embeds"][0]
    assert embed["title"] == "🏆 Achievement unlocked!"
    assert embed["fields"][0]["name"] == "First Step"
    assert announcement["allowed_mentions"]["users"] == [community.alice.id]
    assert announcement["allowed_mentions"]["parse"] == []
