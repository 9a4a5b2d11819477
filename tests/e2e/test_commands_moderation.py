"""Moderator commands end to end through the simulator: /achievement, /stat, /tier and /settings."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from typing import Any

import pytest

from bot.app import AchievementsBot, running
from bot.clock import FakeClock
from bot.errors import UserFacingError
from bot.settings import Settings
from discord_sim import CommandNotAvailable, DiscordSimulator, SimInteraction, SimUser
from tests.e2e.activity_support import wait_stat
from tests.e2e.conftest import Community
from tests.e2e.database_support import database_busy

Payload = dict[str, Any]
MODERATOR_GROUPS = ("achievement", "stat", "tier", "settings")
MANAGE_SERVER = "32"  # 0x20, as Discord stores default_member_permissions


def field(embed: Payload, name: str) -> str:
    for f in embed.get("fields") or []:
        if f["name"] == name:
            return str(f["value"])
    raise AssertionError(f"no field {name!r} in {[f['name'] for f in embed.get('fields') or []]}")


def synced(simulator: DiscordSimulator, community: Community, name: str) -> Payload:
    return next(c for c in simulator.synced_commands(community.id) if c["name"] == name)


def option(command: Payload, *path: str) -> Payload:
    node = command
    for name in path:
        node = next(o for o in node["options"] if o["name"] == name)
    return node


async def run(simulator: DiscordSimulator, community: Community, user: SimUser, command: str,
              **options: Any) -> SimInteraction:
    return await simulator.invoke_command(community.id, community.general.id, user.id, command, **options)


async def moderate(simulator: DiscordSimulator, community: Community, command: str, **options: Any) -> Payload:
    """The moderator runs a command; returns what they see, which is always private."""
    ix = await run(simulator, community, community.moderator, command, **options)
    message = await ix.message()
    assert ix.ephemeral, f"/{command} answered in public: {message}"
    return message


async def chat(simulator: DiscordSimulator, bot: AchievementsBot, community: Community, user: SimUser,
               count: int) -> None:
    """The member posts `count` messages; returns once the bot has counted them all."""
    before = (await bot.recorder.snapshot(community.id, user.id))[0].get("messages")
    for i in range(count):
        await simulator.send_message(community.general.id, user.id, f"message {i}")

    async def counted() -> bool:
        return (await bot.recorder.snapshot(community.id, user.id))[0].get("messages") >= before + count

    await simulator.wait_for(counted)  # type: ignore[arg-type]  # mypy cannot pick T from T | Awaitable[T]


async def achievement_list(simulator: DiscordSimulator, community: Community) -> str:
    """Every page of /achievement list, as one text."""
    message = await moderate(simulator, community, "achievement list")
    text = [message["embeds"][0]["description"]]
    while not component(message, "pager:next")["disabled"]:
        message = await (await simulator.click_button(message, "pager:next", community.moderator.id)).message()
        text.append(message["embeds"][0]["description"])
    return "\n".join(text)


def component(message: Payload, custom_id: str) -> Payload:
    return next(c for row in message["components"] for c in row["components"] if c["custom_id"] == custom_id)


def announcements(simulator: DiscordSimulator, community: Community, title: str, name: str | None = None,
                  member: SimUser | None = None) -> list[Payload]:
    """Public announcements in #general with this embed title (and first field name, and member)."""
    found = []
    for message in simulator.channel_messages(community.general.id):
        embed = (message.get("embeds") or [{}])[0]
        if embed.get("title") != title:
            continue
        if name is not None and (embed.get("fields") or [{}])[0].get("name") != name:
            continue
        if member is not None and message["content"] != f"<@{member.id}>":
            continue
        found.append(message)
    return found


async def profile(simulator: DiscordSimulator, community: Community, user: SimUser) -> Payload:
    ix = await run(simulator, community, user, "profile")
    embed: Payload = (await ix.message())["embeds"][0]
    return embed


# ---------------------------------------------------------------------------------------------- permissions
@pytest.mark.parametrize("group", MODERATOR_GROUPS)
async def test_moderator_groups_sync_with_manage_server_as_their_default_permission(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, group: str
) -> None:
    command = synced(simulator, community, group)

    assert command["default_member_permissions"] == MANAGE_SERVER
    assert command.get("contexts") == [0] or command.get("dm_permission") is False


@pytest.mark.parametrize("command", ("profile", "leaderboard", "achievements"))
async def test_member_commands_are_open_to_everyone(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, command: str
) -> None:
    assert synced(simulator, community, command).get("default_member_permissions") is None


@pytest.mark.parametrize("command", ("achievement list", "stat add", "tier list", "settings show"))
async def test_a_plain_member_cannot_invoke_moderator_commands(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, command: str
) -> None:
    options = {"member": community.bob, "stat": "tasks_completed"} if command == "stat add" else {}

    with pytest.raises(CommandNotAvailable):
        await run(simulator, community, community.alice, command, **options)


async def test_the_server_owner_can_use_moderator_commands_without_a_role(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    ix = await run(simulator, community, community.owner, "settings show")

    assert (await ix.message())["embeds"][0]["title"] == "Settings"


async def test_achievement_points_option_is_bounded_to_one_to_ten_thousand(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    points = option(synced(simulator, community, "achievement"), "add", "points")
    amount = option(synced(simulator, community, "stat"), "add", "amount")

    assert (points["min_value"], points["max_value"]) == (1, 10_000)
    assert (amount["min_value"], amount["max_value"]) == (1, 1000)


async def test_commands_are_synced_again_only_when_they_changed(
    simulator: DiscordSimulator, community: Community, bot_settings: Settings, clock: FakeClock
) -> None:
    def syncs() -> int:
        return len(simulator.requests_to("PUT", rf"/applications/\d+/guilds/{community.id}/commands$"))

    async with running(bot_settings, clock=clock, ready_timeout=15, guild_ready_timeout=0.1):
        assert syncs() == 1
    async with running(bot_settings, clock=clock, ready_timeout=15, guild_ready_timeout=0.1):
        assert syncs() == 1
    assert {c["name"] for c in simulator.synced_commands(community.id)} >= {"profile", "achievement", "settings"}


# ---------------------------------------------------------------------------------------------- conditions
async def test_a_condition_missing_its_number_is_refused_with_a_pointer_and_nothing_is_saved(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "achievement add", name="Talker", description="Talk.", points=10,
                           condition="messages >= ")

    assert reply["content"].startswith("❌ The condition has an error:")
    assert "```\nmessages >= \n            ^\n```" in reply["content"]
    assert "Talker" not in await achievement_list(simulator, community)


async def test_a_misspelled_stat_is_refused_with_a_suggestion_and_nothing_is_saved(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "achievement add", name="Talker", description="Talk.", points=10,
                           condition="mesages >= 5")

    assert "did you mean 'messages'?" in reply["content"]
    assert "```\nmesages >= 5\n^\n```" in reply["content"]
    assert "Talker" not in await achievement_list(simulator, community)


async def test_a_good_condition_is_saved_and_previewed(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 6)
    await chat(simulator, running_bot, community, community.bob, 1)

    reply = await moderate(simulator, community, "achievement add", name="Talker", description="Send 5 messages.",
                           points=15, condition="messages>=5")

    embed = reply["embeds"][0]
    assert embed["title"] == "Created: Talker"
    assert field(embed, "Id") == "`talker`"
    assert field(embed, "Condition") == "`messages >= 5`"
    assert field(embed, "Already met by").startswith("1 of 2 members")
    assert "**Talker** `talker` · 15 pts\n`messages >= 5`" in await achievement_list(simulator, community)


async def test_a_new_achievement_is_unlocked_retroactively_for_members_who_meet_it(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 6)
    await chat(simulator, running_bot, community, community.bob, 1)

    await moderate(simulator, community, "achievement add", name="Talker", description="Send 5 messages.",
                   points=15, condition="messages >= 5")

    unlocked = await simulator.wait_for(
        lambda: announcements(simulator, community, "🏆 Achievement unlocked!", "Talker")
    )
    assert unlocked[0]["content"] == f"<@{community.alice.id}>"
    assert not announcements(simulator, community, "🏆 Achievement unlocked!", "Talker", community.bob)
    assert (await profile(simulator, community, community.alice))["description"] == "**Beginner** · 25 points"


async def test_a_condition_every_member_already_meets_is_flagged_too_easy(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 2)
    await chat(simulator, running_bot, community, community.bob, 2)

    reply = await moderate(simulator, community, "achievement add", name="Hello", description="Say hello.",
                           points=5, condition="messages >= 1")

    assert field(reply["embeds"][0], "Check this") == "⚠️ Too easy: all 2 members with activity already meet it."


async def test_an_always_true_condition_is_flagged_too_easy(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "achievement add", name="Free", description="Free points.",
                           points=5, condition="messages >= 0")

    assert field(reply["embeds"][0], "Check this").startswith("⚠️ Too easy: this condition is true for everyone")


async def test_a_threshold_far_beyond_the_most_active_member_is_flagged_too_hard(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 12)

    reply = await moderate(simulator, community, "achievement add", name="Marathon", description="Chat a lot.",
                           points=500, condition="messages >= 5000")

    assert field(reply["embeds"][0], "Check this") == (
        "⚠️ Maybe too hard: messages >= 5,000 is over 10× the most active member's 12."
    )


async def test_a_reasonable_condition_has_no_warning(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 12)

    reply = await moderate(simulator, community, "achievement add", name="Talker", description="Chat.",
                           points=50, condition="messages >= 50")

    assert "Check this" not in [f["name"] for f in reply["embeds"][0]["fields"]]


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("options", "error"), [
    ({"starts": "2026-02-30"}, "❌ starts `2026-02-30` is not a real date or time"),
    ({"starts": "next friday"}, "❌ starts must look like `2026-12-24` or `2026-12-24 18:00`, not `next friday`."),
    ({"ends": "2026-01-10 25:00"}, "❌ ends `2026-01-10 25:00` is not a real date or time"),
    ({"starts": "2026-03-01", "ends": "2026-02-01"}, "❌ `ends` must be after `starts`."),
    ({"name": "   "}, "❌ The name cannot be empty."),
    ({"name": "First Step"}, "❌ An achievement named **First Step** already exists"),
    ({"name": "first step"}, "❌ An achievement named **first step** already exists"),
])
async def test_bad_achievement_input_is_refused_privately_and_nothing_is_saved(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, options: dict[str, str],
    error: str,
) -> None:
    before = await achievement_list(simulator, community)
    values = {"name": "Spring Fest", "description": "Chat in spring.", "points": 10, "condition": "messages >= 1"}

    reply = await moderate(simulator, community, "achievement add", **(values | options))

    assert reply["content"].startswith(error)
    assert await achievement_list(simulator, community) == before


@pytest.mark.parametrize(("changes", "error"), [
    ({"points": 0}, "Points must be between 1 and 10,000, not 0."),
    ({"points": 10_001}, "Points must be between 1 and 10,000, not 10001."),
    ({"name": "x" * 101}, "The name is 101 characters long; the limit is 100."),
    ({"description": "x" * 1001}, "The description is 1001 characters long; the limit is 1000."),
])
async def test_values_discord_would_refuse_are_refused_by_the_bot_too(
    running_bot: AchievementsBot, community: Community, changes: dict[str, Any], error: str
) -> None:
    values: dict[str, Any] = {"name": "Big", "description": "Big one.", "points": 10, "condition": "messages >= 9"}

    with pytest.raises(UserFacingError, match=error):
        await running_bot.management.add_achievement(community.id, community.moderator.id, **(values | changes))

    names = [a.name for a in (await running_bot.recorder.guild(community.id)).rulebook.achievements]
    assert "Big" not in names


async def test_an_edit_to_a_name_already_used_is_refused(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "achievement edit", achievement="chatterbox", name="First Step")

    assert reply["content"] == "❌ Another achievement is already named **First Step**."
    assert "**Chatterbox** `chatterbox`" in await achievement_list(simulator, community)


async def test_editing_an_unknown_achievement_says_so(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "achievement edit", achievement="nope", points=5)

    assert reply["content"] == "❌ There is no achievement `nope` here. Pick one from the list."


async def test_an_unknown_timezone_is_refused_and_the_setting_kept(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "settings timezone", timezone="Mars/Olympus_Mons")

    assert reply["content"].startswith("❌ `Mars/Olympus_Mons` is not a timezone I know.")
    shown = await moderate(simulator, community, "settings show")
    assert field(shown["embeds"][0], "Timezone") == "UTC"


async def test_a_known_timezone_is_saved_and_shown(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "settings timezone", timezone="Europe/Paris")

    assert reply["content"].startswith("🕛 Timezone set to **Europe/Paris** (local time now 2026-01-05 13:00)")
    shown = await moderate(simulator, community, "settings show")
    assert field(shown["embeds"][0], "Timezone") == "Europe/Paris"


async def test_an_achievement_with_dates_is_read_in_the_servers_timezone(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await moderate(simulator, community, "settings timezone", timezone="Asia/Tokyo")

    reply = await moderate(simulator, community, "achievement add", name="Hanami", description="Spring chat.",
                           points=10, condition="messages >= 1", starts="2026-04-01 09:00", ends="2026-04-07")

    # 09:00 in Tokyo is 00:00 UTC; the end of the 7th in Tokyo is 15:00 UTC on the 7th.
    assert field(reply["embeds"][0], "Window") == "<t:1775001600:f> → <t:1775574000:f>"


async def test_a_reward_role_is_shown_in_the_preview(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    helpers = simulator.create_role(community.id, "Helpers", position=3)

    reply = await moderate(simulator, community, "achievement add", name="Helper", description="Help out.",
                           points=10, condition="messages >= 50", role=helpers)

    assert field(reply["embeds"][0], "Reward role") == f"<@&{helpers.id}>"


async def test_a_reward_role_above_the_bots_own_is_refused_and_nothing_is_saved(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    admins = simulator.create_role(community.id, "Admins", position=20)

    reply = await moderate(simulator, community, "achievement add", name="Helper", description="Help out.",
                           points=10, condition="messages >= 50", role=admins)

    assert reply["content"].startswith(f"❌ <@&{admins.id}> is above my highest role, so I cannot give it.")
    assert "Helper" not in await achievement_list(simulator, community)


# ---------------------------------------------------------------------------------------------- mentions
async def test_an_everyone_party_achievement_pings_nobody_but_the_member(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 1)

    await moderate(simulator, community, "achievement add", name="@everyone party",
                   description=f"Party with <@&{community.moderators.id}> and @here!", points=10,
                   condition="messages >= 1")

    party = (await simulator.wait_for(
        lambda: announcements(simulator, community, "🏆 Achievement unlocked!", "@everyone party")
    ))[0]
    assert party["content"] == f"<@{community.alice.id}>"
    assert party["allowed_mentions"]["parse"] == []
    assert party["allowed_mentions"]["users"] == [community.alice.id]
    assert not party["allowed_mentions"].get("roles")
    assert party["mention_everyone"] is False
    assert party["mention_roles"] == []
    assert [m["id"] for m in party["mentions"]] == [str(community.alice.id)]


async def test_moderator_replies_naming_an_everyone_party_ping_nobody(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await moderate(simulator, community, "achievement add", name="@everyone party", description="@here party",
                   points=10, condition="messages >= 1000")

    prompt = await moderate(simulator, community, "achievement remove", achievement="everyone-party")
    granted = await moderate(simulator, community, "achievement grant", member=community.alice,
                             achievement="everyone-party")

    removed = await (await simulator.click_button(prompt, "confirm:yes", community.moderator.id)).message()

    for reply in (prompt, granted, removed):
        assert "@everyone party" in reply["content"]
        assert reply["mention_everyone"] is False
        assert reply["allowed_mentions"]["parse"] == []


# ---------------------------------------------------------------------------------------------- /stat add
async def test_stat_add_unlocks_an_achievement_reading_that_stat_and_announces_a_tier_up(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await moderate(simulator, community, "achievement add", name="Task Master", description="Finish 3 tasks.",
                   points=100, condition="tasks_completed >= 3")

    reply = await moderate(simulator, community, "stat add", member=community.alice, stat="tasks_completed",
                           amount=3)

    assert reply["content"] == (
        f"➕ Added 3 `tasks_completed` to <@{community.alice.id}>. Unlocked: **Task Master**. New tier: 🥈 Student."
    )
    unlock = (await simulator.wait_for(
        lambda: announcements(simulator, community, "🏆 Achievement unlocked!", "Task Master", community.alice)
    ))[0]
    assert field(unlock["embeds"][0], "Points") == "+100 (total 100)"
    tier_up = (await simulator.wait_for(
        lambda: announcements(simulator, community, "⬆️ New tier reached!", member=community.alice)
    ))[0]
    assert tier_up["embeds"][0]["description"] == "🥉 Beginner → **🥈 Student**"
    assert tier_up["allowed_mentions"]["users"] == [community.alice.id]


async def test_stat_add_below_the_threshold_unlocks_nothing(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await moderate(simulator, community, "achievement add", name="Task Master", description="Finish 3 tasks.",
                   points=100, condition="tasks_completed >= 3")

    reply = await moderate(simulator, community, "stat add", member=community.alice, stat="tasks_completed",
                           amount=2)

    assert reply["content"] == f"➕ Added 2 `tasks_completed` to <@{community.alice.id}>."


@pytest.mark.parametrize(("stat", "error"), [
    ("messages", "❌ `messages` is counted by the bot itself."),
    ("Tasks Completed!", "❌ A stat name uses lowercase letters, digits and `_`"),
    ("mesages", "❌ The condition has an error: unknown stat 'mesages'"),
])
async def test_stat_add_refuses_built_in_or_malformed_stats(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, stat: str, error: str
) -> None:
    reply = await moderate(simulator, community, "stat add", member=community.alice, stat=stat, amount=1)

    assert reply["content"].startswith(error)


async def test_stat_add_to_a_bot_is_refused(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "stat add", member=simulator.bot_user_id, stat="tasks_completed")

    assert reply["content"] == "❌ Bots do not earn achievements."


async def test_stat_autocomplete_offers_custom_stats_only(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    choices = await simulator.autocomplete(community.id, community.general.id, community.moderator.id, "stat add",
                                           focused="stat", value="", member=community.alice)

    values = [c["value"] for c in choices]
    assert "tasks_completed" in values
    assert "messages" not in values


# ---------------------------------------------------------------------------------------------- remove, grant, revoke
async def test_removing_an_achievement_asks_first_and_says_what_holders_lose(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 10)

    prompt = await moderate(simulator, community, "achievement remove", achievement="chatterbox")

    assert prompt["content"] == (
        "Remove **Chatterbox** (`chatterbox`)? 1 member has earned it; they will lose it and its 25 points. "
        "This cannot be undone."
    )
    assert [c["label"] for row in prompt["components"] for c in row["components"]] == ["Confirm", "Cancel"]


async def test_confirming_a_removal_takes_the_achievement_and_its_points_from_holders(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 10)
    prompt = await moderate(simulator, community, "achievement remove", achievement="chatterbox")

    confirmed = await (await simulator.click_button(prompt, "confirm:yes", community.moderator.id)).message()

    assert confirmed["content"] == "🗑️ Removed **Chatterbox**. 1 member lost it and its 25 points."
    assert confirmed["components"] == []
    assert (await profile(simulator, community, community.alice))["description"] == "**Beginner** · 10 points"
    assert "chatterbox" not in await achievement_list(simulator, community)


async def test_cancelling_a_removal_changes_nothing(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 10)
    prompt = await moderate(simulator, community, "achievement remove", achievement="chatterbox")

    cancelled = await (await simulator.click_button(prompt, "confirm:no", community.moderator.id)).message()

    assert cancelled["content"] == "Cancelled: nothing was changed."
    assert (await profile(simulator, community, community.alice))["description"] == "**Beginner** · 35 points"
    assert "`chatterbox`" in await achievement_list(simulator, community)


async def test_grant_gives_an_achievement_whatever_its_condition_and_announces_it(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "achievement grant", member=community.bob,
                           achievement="week-warrior")

    assert reply["content"] == f"✅ Granted **Week Warrior** to <@{community.bob.id}>."
    await simulator.wait_for(
        lambda: announcements(simulator, community, "🏆 Achievement unlocked!", "Week Warrior", community.bob)
    )
    assert (await profile(simulator, community, community.bob))["description"] == "**Student** · 100 points"


async def test_granting_an_achievement_twice_is_refused(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await moderate(simulator, community, "achievement grant", member=community.bob, achievement="chatterbox")

    again = await moderate(simulator, community, "achievement grant", member=community.bob, achievement="chatterbox")

    assert again["content"] == f"❌ <@{community.bob.id}> already has **Chatterbox**."


async def test_granting_to_someone_who_is_not_a_member_is_refused(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    stranger = simulator.create_user("stranger")

    reply = await moderate(simulator, community, "achievement grant", member=stranger, achievement="chatterbox")

    assert reply["content"] == "❌ That user is not a member of this server."


async def test_revoke_takes_an_achievement_and_its_points_back(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 10)

    reply = await moderate(simulator, community, "achievement revoke", member=community.alice,
                           achievement="chatterbox")

    assert reply["content"] == f"↩️ Took **Chatterbox** and its 25 points from <@{community.alice.id}>."
    assert (await profile(simulator, community, community.alice))["description"] == "**Beginner** · 10 points"


async def test_revoking_an_achievement_the_member_lacks_is_refused(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "achievement revoke", member=community.bob,
                           achievement="chatterbox")

    assert reply["content"] == f"❌ <@{community.bob.id}> does not have **Chatterbox**."


async def test_editing_points_moves_the_holders_totals(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 10)

    reply = await moderate(simulator, community, "achievement edit", achievement="chatterbox", points=50)

    assert reply["embeds"][0]["title"] == "Updated: Chatterbox"
    assert (await profile(simulator, community, community.alice))["description"] == "**Beginner** · 60 points"


async def test_achievement_ids_autocomplete_by_id_or_name(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    choices = await simulator.autocomplete(community.id, community.general.id, community.moderator.id,
                                           "achievement edit", focused="achievement", value="warr")

    assert choices == [{"name": "Week Warrior (week-warrior)", "value": "week-warrior"}]


async def test_timezones_autocomplete(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    choices = await simulator.autocomplete(community.id, community.general.id, community.moderator.id,
                                           "settings timezone", focused="timezone", value="paris")

    assert choices == [{"name": "Europe/Paris", "value": "Europe/Paris"}]


# ---------------------------------------------------------------------------------------------- tiers
async def test_tier_set_adds_a_tier_that_tier_list_shows(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "tier set", name="Scholar", points=250, badge="📚")

    assert reply["content"] == "✅ Tier 📚 **Scholar** at 250 points."
    tiers = (await moderate(simulator, community, "tier list"))["embeds"][0]["description"].splitlines()
    assert tiers[2] == "📚 **Scholar** · 250 pts"


async def test_tier_remove_takes_the_tier_away(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "tier remove", name="Legend")

    assert reply["content"] == "🗑️ Removed the tier **Legend**."
    assert "Legend" not in (await moderate(simulator, community, "tier list"))["embeds"][0]["description"]


async def test_a_tier_set_at_another_tiers_threshold_says_it_replaces_it(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "tier set", name="Apprentice", points=100, badge="🎓")

    assert reply["content"] == (
        "✅ Tier 🎓 **Apprentice** at 100 points. It replaces 🥈 **Student** (100), which had the same points."
    )
    assert "Student" not in (await moderate(simulator, community, "tier list"))["embeds"][0]["description"]


async def test_a_server_cannot_have_more_than_twenty_tiers(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    for n in range(15):  # the five default tiers and fifteen more
        await running_bot.management.set_tier(community.id, community.moderator.id, f"Level {n}", 10_000 + n, "⭐")

    reply = await moderate(simulator, community, "tier set", name="One Too Many", points=99_999, badge="🌟")

    assert reply["content"] == "❌ A server can have at most 20 tiers; remove one with `/tier remove` first."
    assert "One Too Many" not in (await moderate(simulator, community, "tier list"))["embeds"][0]["description"]


async def test_removing_an_unknown_tier_is_refused(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "tier remove", name="Wizard")

    assert reply["content"] == "❌ There is no tier named `Wizard`."


# ---------------------------------------------------------------------------------------------- settings
async def test_announce_channel_moves_the_announcements(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await moderate(simulator, community, "settings announce-channel", channel=community.announcements)
    assert reply["content"] == f"📣 Announcements now go to <#{community.announcements.id}>."

    await chat(simulator, running_bot, community, community.alice, 1)

    posted = await simulator.wait_for(lambda: simulator.channel_messages(community.announcements.id))
    assert posted[0]["embeds"][0]["fields"][0]["name"] == "First Step"


async def test_anti_spam_settings_are_shown(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await moderate(simulator, community, "settings anti-spam", cooldown=30, min_length=5)

    shown = await moderate(simulator, community, "settings show")

    assert field(shown["embeds"][0], "Anti-spam") == "cooldown 30 s, min length 5"


async def test_audit_lists_moderator_changes_with_who_made_them(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await moderate(simulator, community, "settings timezone", timezone="Europe/Paris")
    await moderate(simulator, community, "achievement add", name="Talker", description="Chat.", points=10,
                   condition="messages >= 50")
    await moderate(simulator, community, "achievement grant", member=community.bob, achievement="talker")
    await moderate(simulator, community, "tier set", name="Scholar", points=250, badge="📚")

    audit = await moderate(simulator, community, "settings audit")

    lines = audit["embeds"][0]["description"].splitlines()
    who_did_what = [re.fullmatch(r"<t:\d+:R> (<@\d+>) `([a-z.]+)` (.*)", line).groups()  # type: ignore[union-attr]
                    for line in lines]
    mod = f"<@{community.moderator.id}>"
    assert who_did_what == [
        (mod, "tier.set", "📚 Scholar at 250"),
        (mod, "achievement.grant", f"talker to {community.bob.id}"),
        (mod, "achievement.add", "talker: Talker (10 pts) when messages >= 50"),
        (mod, "settings", "timezone=Europe/Paris"),
    ]
    assert audit["allowed_mentions"]["parse"] == []


async def test_reset_member_asks_first_then_erases_their_data(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 10)
    prompt = await moderate(simulator, community, "settings reset-member", member=community.alice)
    assert prompt["content"].startswith(f"Erase every stat, point and achievement of <@{community.alice.id}>")

    done = await (await simulator.click_button(prompt, "confirm:yes", community.moderator.id)).message()

    assert done["content"] == f"🧹 Erased the data of <@{community.alice.id}>."
    after = await profile(simulator, community, community.alice)
    assert after["description"] == "**Beginner** · 0 points"
    assert field(after, "Rank") == "Unranked"


async def test_cancelling_a_reset_keeps_the_members_data(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 10)
    prompt = await moderate(simulator, community, "settings reset-member", member=community.alice)

    await (await simulator.click_button(prompt, "confirm:no", community.moderator.id)).message()

    assert (await profile(simulator, community, community.alice))["description"] == "**Beginner** · 35 points"


def uploaded(simulator: DiscordSimulator, ix: SimInteraction) -> tuple[str, bytes]:
    """The file the bot uploaded in answer to an interaction, from the request Discord received."""
    requests = [r for r in simulator.requests_to("POST", rf"/webhooks/\d+/{ix.token}") if r.files]
    requests += [r for r in simulator.requests_to("PATCH", rf"/webhooks/\d+/{ix.token}") if r.files]
    assert len(requests) == 1, requests
    file = requests[0].files[0]
    return file.filename, file.data


async def test_export_as_json_attaches_the_guilds_data(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 10)

    ix = await run(simulator, community, community.moderator, "settings export", format="json")
    message = await ix.message()

    assert ix.ephemeral
    assert message["content"] == "📦 Export of 1 member."
    assert message["attachments"][0]["filename"] == f"achievements-{community.id}.json"
    filename, data = uploaded(simulator, ix)
    assert filename == f"achievements-{community.id}.json"
    export = json.loads(data)
    assert export["guild_id"] == community.id
    chatterbox = next(a for a in export["achievements"] if a["id"] == "chatterbox")
    assert (chatterbox["points"], chatterbox["condition"]) == (25, "messages >= 10")
    alice = export["members"][0]
    assert (alice["member_id"], alice["messages"], alice["points"]) == (community.alice.id, 10, 35)
    assert sorted(u["achievement_id"] for u in alice["unlocks"]) == ["chatterbox", "first-step"]


async def test_export_as_csv_has_one_row_per_member(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 10)
    await chat(simulator, running_bot, community, community.bob, 1)

    ix = await run(simulator, community, community.moderator, "settings export", format="csv")
    await ix.message()

    filename, data = uploaded(simulator, ix)
    assert filename == f"achievements-{community.id}.csv"
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [(int(r["member_id"]), r["points"], sorted(r["unlocks"].split())) for r in rows] == [
        (community.alice.id, "35", ["chatterbox", "first-step"]),
        (community.bob.id, "10", ["first-step"]),
    ]


async def test_a_second_export_of_the_server_while_one_runs_is_refused_privately(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await running_bot.recorder.guild(community.id)
    async with database_busy(running_bot):  # the first export waits to flush the message below
        await simulator.send_message(community.general.id, community.alice.id, "hello")
        await wait_stat(simulator, running_bot, community.id, community.alice.id, "messages", 1)
        first = await run(simulator, community, community.moderator, "settings export", format="json")
        await first.response()

        second = await moderate(simulator, community, "settings export", format="csv")

        assert second["content"] == "❌ An export of this server is already running: wait for its file, then try again."
    assert (await first.message())["content"] == "📦 Export of 1 member."
    third = await run(simulator, community, community.moderator, "settings export", format="csv")
    assert (await third.message())["content"] == "📦 Export of 1 member."


# ------------------------------------------------------------------------------ replies under load
async def hold_the_database(bot: AchievementsBot, seconds: float) -> asyncio.Task[None]:
    """Another guild's long write: every write of this command waits `seconds` for the lock."""
    holding = asyncio.Event()

    async def hold() -> None:
        async with bot.storage.db.transaction():
            holding.set()
            await asyncio.sleep(seconds)

    task = asyncio.create_task(hold())
    await holding.wait()
    return task


@pytest.mark.parametrize(("command", "options", "expected"), [
    ("tier set", {"name": "Scholar", "points": 250, "badge": "📚"}, "✅ Tier 📚 **Scholar** at 250 points."),
    ("tier remove", {"name": "Legend"}, "🗑️ Removed the tier **Legend**."),
])
async def test_a_command_that_writes_answers_even_when_the_write_outlasts_the_reply_deadline(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, command: str,
    options: dict[str, object], expected: str,
) -> None:
    simulator.interaction_response_deadline = 0.3
    held = await hold_the_database(running_bot, 0.8)

    reply = await moderate(simulator, community, command, **options)
    await held

    assert reply["content"] == expected
