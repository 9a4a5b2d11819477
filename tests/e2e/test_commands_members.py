"""Member commands end to end through the simulator: /profile, /leaderboard, /achievements and their pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.app import AchievementsBot
from bot.clock import FakeClock
from bot.views import OwnedView
from discord_sim import DiscordSimulator, SimInteraction, SimUser
from tests.e2e.conftest import Community

Payload = dict[str, Any]
HIDDEN = "??? Hidden achievement"
# Default-pack achievements in increasing order of points, to give members distinct totals.
BY_POINTS = ("first-step", "chatterbox", "warming-up", "crowd-pleaser", "insomniac", "conversationalist",
             "familiar-face", "collector", "community-voice", "monthly-devotee", "living-legend", "centurion")


def field(embed: Payload, name: str) -> str:
    for f in embed.get("fields") or []:
        if f["name"] == name:
            return str(f["value"])
    raise AssertionError(f"no field {name!r} in {[f['name'] for f in embed.get('fields') or []]}")


def field_names(embed: Payload) -> list[str]:
    return [f["name"] for f in embed.get("fields") or []]


def buttons(message: Payload) -> dict[str, Payload]:
    return {c["custom_id"]: c for row in message["components"] for c in row["components"]}


def everything_shown(message: Payload) -> str:
    """All the text of a message a member can read: content, titles, descriptions, fields, footers."""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or "", (embed.get("footer") or {}).get("text", "")]
        parts += [f"{f['name']} {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(parts)


async def run(simulator: DiscordSimulator, community: Community, user: SimUser, command: str,
              **options: Any) -> SimInteraction:
    return await simulator.invoke_command(community.id, community.general.id, user.id, command, **options)


async def shown(simulator: DiscordSimulator, community: Community, user: SimUser, command: str,
                **options: Any) -> Payload:
    """What the member sees after running a command."""
    return await (await run(simulator, community, user, command, **options)).message()


async def chat(simulator: DiscordSimulator, bot: AchievementsBot, community: Community, user: SimUser,
               count: int) -> None:
    """The member posts `count` messages; returns once the bot has counted them all."""
    before = (await bot.recorder.snapshot(community.id, user.id))[0].get("messages")
    for i in range(count):
        await simulator.send_message(community.general.id, user.id, f"message {i}")

    async def counted() -> bool:
        return (await bot.recorder.snapshot(community.id, user.id))[0].get("messages") >= before + count

    await simulator.wait_for(counted)  # type: ignore[arg-type]  # mypy cannot pick T from T | Awaitable[T]


async def grant(bot: AchievementsBot, community: Community, user: SimUser, *achievement_ids: str) -> None:
    for achievement_id in achievement_ids:
        await bot.management.grant(community.id, community.moderator.id, user.id, achievement_id)


def join(simulator: DiscordSimulator, community: Community, name: str) -> SimUser:
    user = simulator.create_user(name)
    simulator.add_member(community.id, user.id)
    return user


async def crowd(simulator: DiscordSimulator, bot: AchievementsBot, community: Community, size: int) -> list[SimUser]:
    """`size` members with distinct points, highest first: the i-th from last holds i achievements."""
    members = [join(simulator, community, f"member{i:02d}") for i in range(size)]
    for place, user in enumerate(members):
        await grant(bot, community, user, *BY_POINTS[: size - place])
    return members


async def page_of(ix: SimInteraction) -> str:
    message = await ix.message()
    return str(buttons(message)["pager:counter"]["label"])


# ---------------------------------------------------------------------------------------------- /profile
async def test_profile_shows_tier_badge_points_rank_and_streak(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 12)  # First Step 10 + Chatterbox 25
    await chat(simulator, running_bot, community, community.bob, 1)

    embed = (await shown(simulator, community, community.alice, "profile"))["embeds"][0]

    assert embed["title"] == "🥉 alice"
    assert embed["description"] == "**Beginner** · 35 points"
    assert field(embed, "Rank") == "🥇 #1 of 2 · Top 50%"
    assert field(embed, "Streak") == "🔥 1 day (best 1)"
    assert field(embed, "Achievements") == "2/20"


async def test_profile_of_a_member_ranked_second_says_so(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 12)
    await chat(simulator, running_bot, community, community.bob, 1)

    embed = (await shown(simulator, community, community.alice, "profile", member=community.bob))["embeds"][0]

    assert embed["title"] == "🥉 bob"
    assert field(embed, "Rank") == "🥈 #2 of 2 · Top 100%"


async def test_profile_shows_a_progress_bar_to_the_next_tier(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 12)

    embed = (await shown(simulator, community, community.alice, "profile"))["embeds"][0]

    assert field(embed, "Next tier") == "███░░░░░░░ 35% to 🥈 Student (35/100)"


async def test_profile_lists_the_three_locked_achievements_closest_to_done(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 63)

    embed = (await shown(simulator, community, community.alice, "profile"))["embeds"][0]

    closest = field(embed, "Closest to unlocking").splitlines()
    assert closest[0] == "**Conversationalist**: ██████░░░░ 63% · 63/100 messages"
    assert closest[1] == "**Warming Up**: ███░░░░░░░ 33% · 1/3 streak"
    assert closest[2] == "**Regular**: ██░░░░░░░░ 20% · 1/5 logins"


async def test_profile_does_not_offer_time_of_day_challenges_as_closest(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 1)

    embed = (await shown(simulator, community, community.alice, "profile"))["embeds"][0]

    closest = field(embed, "Closest to unlocking")
    assert "Early Bird" not in closest
    assert "Night Owl" not in closest


async def test_profile_lists_the_latest_unlocks_newest_first(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    await chat(simulator, running_bot, community, community.alice, 1)
    clock.advance(timedelta(minutes=5))
    await chat(simulator, running_bot, community, community.alice, 9)

    embed = (await shown(simulator, community, community.alice, "profile"))["embeds"][0]

    latest = field(embed, "Latest unlocks").splitlines()
    assert latest[0].startswith("🏆 **Chatterbox** · <t:")
    assert latest[1].startswith("🏆 **First Step** · <t:")


async def test_member_without_activity_gets_an_unranked_profile_not_an_error(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 1)

    ix = await run(simulator, community, community.bob, "profile")
    embed = (await ix.message())["embeds"][0]

    assert not ix.ephemeral
    assert embed["title"] == "🥉 bob"
    assert embed["description"] == "**Beginner** · 0 points"
    assert field(embed, "Rank") == "Unranked"
    assert "Latest unlocks" not in field_names(embed)
    assert embed["footer"]["text"] == "No activity yet: send a message to get on the board."


async def test_profile_of_the_bot_is_refused_privately(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    ix = await run(simulator, community, community.alice, "profile", member=simulator.bot_user_id)

    message = await ix.message()

    assert ix.ephemeral
    assert message["content"] == "❌ Bots do not earn achievements."


async def test_profile_of_a_member_who_left_shows_their_kept_data_unranked(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.bob, 1)
    await simulator.wait_for(lambda: simulator.channel_messages(community.general.id))  # First Step, stored
    await simulator.remove_member(community.id, community.bob.id)

    async def bob_gone() -> bool:
        return not await running_bot.storage.members.is_ranked(community.id, community.bob.id)

    await simulator.wait_for(bob_gone)  # type: ignore[arg-type]
    ix = await run(simulator, community, community.alice, "profile", member=community.bob)
    embed = (await ix.message())["embeds"][0]

    assert not ix.ephemeral
    assert embed["description"] == "**Beginner** · 10 points"
    assert field(embed, "Rank") == "Unranked"


# ---------------------------------------------------------------------------------------------- /leaderboard
async def test_leaderboard_shows_ten_members_a_page_with_medals_for_the_first_three(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    members = await crowd(simulator, running_bot, community, 12)

    ix = await run(simulator, community, members[0], "leaderboard")
    embed = (await ix.message())["embeds"][0]

    lines = embed["description"].splitlines()
    assert len(lines) == 10
    assert lines[0].startswith(f"🥇 <@{members[0].id}> · ")
    assert lines[0].endswith(" ← you")
    assert lines[1].startswith(f"🥈 <@{members[1].id}> · ")
    assert lines[2].startswith(f"🥉 <@{members[2].id}> · ")
    assert lines[3].startswith(f"`#4` <@{members[3].id}> · ")
    assert lines[9].startswith(f"`#10` <@{members[9].id}> · ")
    assert embed["footer"]["text"] == "Page 1/2 · 12 members ranked"
    assert await page_of(ix) == "1/2"


async def test_leaderboard_lines_show_points(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await grant(running_bot, community, community.alice, "first-step", "chatterbox")

    embed = (await shown(simulator, community, community.bob, "leaderboard"))["embeds"][0]

    assert embed["title"] == "🏆 Leaderboard · Study Hall"
    assert embed["description"] == f"🥇 <@{community.alice.id}> · **35** pts"


async def test_leaderboard_ties_share_a_rank(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    carol, dave = join(simulator, community, "carol"), join(simulator, community, "dave")
    await grant(running_bot, community, carol, "first-step", "chatterbox")
    await grant(running_bot, community, community.alice, "first-step")
    await grant(running_bot, community, community.bob, "first-step")
    await grant(running_bot, community, dave, "first-step")
    await running_bot.management.revoke(community.id, community.moderator.id, dave.id, "first-step")

    embed = (await shown(simulator, community, carol, "leaderboard"))["embeds"][0]

    ranks = [line.split(" <@")[0] for line in embed["description"].splitlines()]
    assert ranks == ["🥇", "🥈", "🥈", "`#4`"]


async def test_leaderboard_adds_the_callers_own_line_when_they_are_off_the_page(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    members = await crowd(simulator, running_bot, community, 12)
    last = members[-1]

    embed = (await shown(simulator, community, last, "leaderboard"))["embeds"][0]

    lines = embed["description"].splitlines()
    assert lines[-2] == "…"
    assert lines[-1] == f"`#12` <@{last.id}> · **10** pts ← you"


async def test_leaderboard_does_not_list_members_who_left(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await grant(running_bot, community, community.alice, "first-step")
    await grant(running_bot, community, community.bob, "first-step", "chatterbox")

    await simulator.remove_member(community.id, community.bob.id)

    async def bob_gone() -> bool:
        return not await running_bot.storage.members.is_ranked(community.id, community.bob.id)

    await simulator.wait_for(bob_gone)  # type: ignore[arg-type]
    embed = (await shown(simulator, community, community.alice, "leaderboard"))["embeds"][0]
    assert f"<@{community.bob.id}>" not in embed["description"]
    assert embed["description"] == f"🥇 <@{community.alice.id}> · **10** pts ← you"
    assert embed["footer"]["text"] == "Page 1/1 · 1 member ranked"


async def test_a_member_who_leaves_right_after_their_first_activity_is_not_listed(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await grant(running_bot, community, community.bob, "first-step")
    post = await simulator.send_message(community.general.id, community.bob.id, "hello")
    await simulator.add_reaction(community.general.id, post["id"], community.alice.id, "👍")  # unlocks nothing

    async def reaction_counted() -> bool:
        return (await running_bot.recorder.snapshot(community.id, community.alice.id))[0].get("reactions_given") == 1

    await simulator.wait_for(reaction_counted)  # type: ignore[arg-type]
    await simulator.remove_member(community.id, community.alice.id)
    guild = running_bot.get_guild(community.id)
    assert guild is not None
    await simulator.wait_for(lambda: guild.get_member(community.alice.id) is None)

    embed = (await shown(simulator, community, community.bob, "leaderboard"))["embeds"][0]
    assert f"<@{community.alice.id}>" not in embed["description"]


async def test_leaderboard_with_nobody_ranked_invites_members_to_start(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    embed = (await shown(simulator, community, community.alice, "leaderboard"))["embeds"][0]

    assert embed["description"] == "Nobody has any points yet. Be the first: say hi!"


async def test_leaderboard_page_option_opens_that_page(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    members = await crowd(simulator, running_bot, community, 12)

    ix = await run(simulator, community, members[0], "leaderboard", page=2)
    embed = (await ix.message())["embeds"][0]

    assert embed["description"].splitlines()[0].startswith(f"`#11` <@{members[10].id}>")
    assert await page_of(ix) == "2/2"


# ---------------------------------------------------------------------------------------------- pagination
async def test_next_and_previous_buttons_turn_the_leaderboard_page(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    members = await crowd(simulator, running_bot, community, 12)
    ix = await run(simulator, community, members[0], "leaderboard")
    message = await ix.message()

    forward = await simulator.click_button(message, "pager:next", members[0].id)
    on_page_two = await forward.message()
    assert on_page_two["embeds"][0]["description"].splitlines()[0].startswith(f"`#11` <@{members[10].id}>")
    assert buttons(on_page_two)["pager:counter"]["label"] == "2/2"
    assert buttons(on_page_two)["pager:next"]["disabled"]

    back = await simulator.click_button(on_page_two, "pager:previous", members[0].id)
    on_page_one = await back.message()
    assert on_page_one["embeds"][0]["description"].splitlines()[0].startswith(f"🥇 <@{members[0].id}>")
    assert buttons(on_page_one)["pager:counter"]["label"] == "1/2"


async def test_jump_to_me_opens_the_page_with_the_callers_line(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    members = await crowd(simulator, running_bot, community, 12)
    last = members[-1]
    message = await shown(simulator, community, last, "leaderboard")

    jump = await simulator.click_button(message, "pager:me", last.id)
    after = await jump.message()

    lines = after["embeds"][0]["description"].splitlines()
    assert lines[-1] == f"`#12` <@{last.id}> · **10** pts ← you"
    assert "…" not in lines
    assert buttons(after)["pager:counter"]["label"] == "2/2"


async def test_jump_to_me_is_not_offered_to_an_unranked_caller(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await grant(running_bot, community, community.alice, "first-step")

    message = await shown(simulator, community, community.bob, "leaderboard")

    assert "pager:me" not in buttons(message)


async def test_another_member_pressing_the_buttons_is_refused_privately_and_the_page_stays(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    members = await crowd(simulator, running_bot, community, 12)
    message = await shown(simulator, community, members[0], "leaderboard")

    intruder = await simulator.click_button(message, "pager:next", community.bob.id)
    refusal = await intruder.message()

    assert intruder.ephemeral
    assert refusal["content"].startswith(f"These buttons belong to <@{members[0].id}>")
    assert refusal["allowed_mentions"]["parse"] == []
    unchanged = simulator.world.messages[int(message["id"])]
    assert unchanged["embeds"][0]["description"] == message["embeds"][0]["description"]
    assert buttons(unchanged)["pager:counter"]["label"] == "1/2"


async def test_pagination_buttons_are_disabled_when_they_expire(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(OwnedView, "default_timeout", 0.2)
    members = await crowd(simulator, running_bot, community, 12)
    message = await shown(simulator, community, members[0], "leaderboard")
    assert not buttons(message)["pager:next"]["disabled"]

    def all_disabled() -> bool:
        now = simulator.world.messages[int(message["id"])]
        return all(b.get("disabled") for b in buttons(now).values())

    assert await simulator.wait_for(all_disabled)


# ---------------------------------------------------------------------------------------------- /achievements
async def test_achievements_lists_unlocked_ones_with_their_date(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 1)

    embed = (await shown(simulator, community, community.alice, "achievements"))["embeds"][0]

    assert embed["title"] == "Achievements · alice"
    first = embed["description"].splitlines()[0]
    assert first.startswith("✅ **First Step** (10 pts) · unlocked <t:")
    assert first.endswith(":d>")


async def test_achievements_lists_locked_ones_with_a_progress_bar(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 4)

    embed = (await shown(simulator, community, community.alice, "achievements"))["embeds"][0]

    lines = embed["description"].splitlines()
    at = lines.index("🔒 **Chatterbox** (25 pts): Send 10 messages.")
    assert lines[at + 1].strip() == "████░░░░░░ 40% · 4/10 messages"


async def test_achievements_are_paginated_eight_a_page(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    ix = await run(simulator, community, community.alice, "achievements")
    first = await ix.message()
    assert first["embeds"][0]["footer"]["text"] == "0/20 unlocked · page 1/3"

    last = await (await simulator.click_button(first, "pager:last", community.alice.id)).message()

    assert last["embeds"][0]["footer"]["text"] == "0/20 unlocked · page 3/3"
    assert buttons(last)["pager:counter"]["label"] == "3/3"


async def test_achievements_of_another_member_show_their_unlocks(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.bob, 1)

    embed = (await shown(simulator, community, community.alice, "achievements", member=community.bob))["embeds"][0]

    assert embed["title"] == "Achievements · bob"
    assert embed["footer"]["text"].startswith("1/20 unlocked")


async def test_achievements_of_the_bot_are_refused_privately(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    ix = await run(simulator, community, community.alice, "achievements", member=simulator.bot_user_id)

    message = await ix.message()

    assert ix.ephemeral
    assert message["content"] == "❌ Bots do not earn achievements."


async def test_time_of_day_challenges_show_no_misleading_full_bar(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    embed = (await shown(simulator, community, community.alice, "achievements"))["embeds"][0]

    lines = embed["description"].splitlines()
    at = lines.index("🔒 **Early Bird** (30 pts): Be active before 06:00 (server time).")
    assert "100%" not in lines[at + 1]
    assert "time of day" in lines[at + 1]


async def all_achievement_pages(simulator: DiscordSimulator, community: Community, user: SimUser,
                                **options: Any) -> list[Payload]:
    message = await shown(simulator, community, user, "achievements", **options)
    pages = [message]
    while not buttons(message)["pager:next"]["disabled"]:
        message = await (await simulator.click_button(message, "pager:next", user.id)).message()
        pages.append(message)
    return pages


async def add_achievement(simulator: DiscordSimulator, community: Community, **options: Any) -> Payload:
    reply = await shown(simulator, community, community.moderator, "achievement add", **options)
    assert reply["embeds"], reply["content"]
    return reply


async def test_hidden_achievement_is_counted_but_never_named_before_it_is_unlocked(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await add_achievement(simulator, community, name="Secret Handshake", description="Say hello three times.",
                          points=20, condition="messages >= 3", hidden=True)
    await chat(simulator, running_bot, community, community.alice, 2)

    pages = await all_achievement_pages(simulator, community, community.alice)
    profile = await shown(simulator, community, community.alice, "profile")
    board = await shown(simulator, community, community.alice, "leaderboard")

    seen = "\n".join(everything_shown(m) for m in [*pages, profile, board])
    assert "Secret Handshake" not in seen
    assert "three times" not in seen
    assert f"🔒 {HIDDEN} ×2" in pages[-1]["embeds"][0]["description"]  # with the default pack's Insomniac


async def test_hidden_achievement_is_named_once_unlocked(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await add_achievement(simulator, community, name="Secret Handshake", description="Say hello three times.",
                          points=20, condition="messages >= 3", hidden=True)

    await chat(simulator, running_bot, community, community.alice, 3)
    announcements = await simulator.wait_for(lambda: [
        m for m in simulator.channel_messages(community.general.id)
        if m["embeds"] and m["embeds"][0]["title"] == "🔓 Hidden achievement revealed!"
    ])

    assert announcements[0]["embeds"][0]["fields"][0]["name"] == "Secret Handshake"
    pages = await all_achievement_pages(simulator, community, community.alice)
    text = "\n".join(p["embeds"][0]["description"] for p in pages)
    assert "✅ **Secret Handshake** (20 pts) · unlocked <t:" in text
    assert f"🔒 {HIDDEN} ×1" in text


async def test_time_limited_achievements_are_marked_upcoming_ending_or_expired(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    # The clock reads 2026-01-05 12:00 UTC.
    await add_achievement(simulator, community, name="Spring Fest", description="Chat during the fest.", points=50,
                          condition="messages >= 1", starts="2026-03-20", ends="2026-03-27")
    await add_achievement(simulator, community, name="Winter Week", description="Chat this week.", points=50,
                          condition="messages >= 500", ends="2026-01-11")
    await add_achievement(simulator, community, name="New Year", description="Chat on new year's day.", points=50,
                          condition="messages >= 1", starts="2026-01-01", ends="2026-01-01")

    pages = await all_achievement_pages(simulator, community, community.alice)

    text = "\n".join(p["embeds"][0]["description"] for p in pages)
    assert "⏳ upcoming: opens <t:1773964800:D>" in text
    assert "⌛ ends on <t:1768176000:f>" in text
    assert "⌛ expired" in text


# ---------------------------------------------------------------------------------- errors after a deferral


@pytest.mark.parametrize("command", ["profile", "leaderboard", "achievements"])
async def test_an_error_after_the_reply_was_deferred_is_shown_only_to_the_caller(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, command: str
) -> None:
    # Discord refuses the reply itself; the error about it must not land in the channel for everyone.
    simulator.fail_next("POST", r"^/webhooks/", status=403)
    ix = await run(simulator, community, community.alice, command)

    await simulator.wait_for(lambda: any(m["flags"] & 64 for m in ix.followups))

    assert ix.followups[-1]["content"] == "❌ I am missing a permission in this channel to do that."
    assert simulator.channel_messages(community.general.id) == []
