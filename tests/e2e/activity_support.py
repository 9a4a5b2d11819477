"""What the activity and announcement specifications look at: a member's stats, the announcements in a channel."""

from __future__ import annotations

from typing import Any

from bot.app import AchievementsBot
from discord_sim import DiscordSimulator


async def stats_of(bot: AchievementsBot, guild_id: int, member_id: int) -> dict[str, int]:
    """The member's counters as /profile would show them (including changes not yet flushed)."""
    stats, _ = await bot.recorder.snapshot(guild_id, member_id)
    return dict(stats.values)


async def unlocked(bot: AchievementsBot, guild_id: int, member_id: int) -> set[str]:
    """Achievement ids the member has in the database."""
    await bot.recorder.flush()
    return {u.achievement_id for u in await bot.storage.members.unlocks_of(guild_id, member_id)}


async def wait_stat(
    simulator: DiscordSimulator, bot: AchievementsBot, guild_id: int, member_id: int, stat: str, value: int
) -> dict[str, int]:
    """Wait until the bot has counted `stat` up to `value` for the member; returns the stats then."""

    async def reached() -> dict[str, int] | None:
        stats = await stats_of(bot, guild_id, member_id)
        return stats if stats.get(stat, 0) == value else None

    try:
        return await simulator.wait_for(reached, timeout=5)
    except TimeoutError:
        raise AssertionError(
            f"{stat} never reached {value}; stats are {await stats_of(bot, guild_id, member_id)}"
        ) from None


def announcements(simulator: DiscordSimulator, channel_id: int) -> list[dict[str, Any]]:
    """The bot's messages with an embed in a channel, oldest first."""
    return [m for m in simulator.channel_messages(channel_id) if m.get("embeds")]


def unlock_named(messages: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Unlock announcements among `messages` for the achievement called `name`."""
    return [m for m in messages if any(f["name"] == name for f in m["embeds"][0].get("fields") or [])]


def fields(message: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}


async def settle(simulator: DiscordSimulator, bot: AchievementsBot) -> None:
    """Wait until every committed announcement has been posted or given up."""
    await bot.recorder.flush()

    async def drained() -> bool:
        return not (await bot.storage.outbox.counts()).get("pending")

    await simulator.wait_for(drained, timeout=5)
