"""Unlock and tier announcements through the simulator: where, what, who is pinged, and delivery that
survives 403s, 429s, 5xx and restarts without losing or duplicating a post."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from bot.announcer import MAX_ATTEMPTS
from bot.app import AchievementsBot, running
from bot.clock import FakeClock
from bot.settings import Settings
from bot.storage import NewAnnouncement, Storage
from discord_sim import DiscordSimulator, SimUser
from tests.e2e.activity_support import announcements, fields, settle, unlock_named, wait_stat
from tests.e2e.conftest import Community

MESSAGES = r"^/channels/\d+/messages$"


async def post(simulator: DiscordSimulator, channel_id: int, author_id: int, count: int = 1) -> None:
    for i in range(count):
        await simulator.send_message(channel_id, author_id, f"message number {i}")


async def wait_announced(simulator: DiscordSimulator, channel_id: int, name: str, count: int = 1) -> list[dict]:
    return await simulator.wait_for(
        lambda: (found := unlock_named(announcements(simulator, channel_id), name)) and len(found) >= count and found
    )


async def retry_due(bot: AchievementsBot, clock: FakeClock) -> int:
    """Let the backoff pass and run a delivery pass, as the announcer's loop would."""
    clock.advance(timedelta(hours=2))
    return await bot.announcer.deliver_due()


def first_step_unlock(community: Community, member_id: int) -> NewAnnouncement:
    """The announcement the recorder writes when a member earns First Step in #general."""
    payload: dict[str, Any] = {
        "achievement_id": "first-step", "name": "First Step", "description": "Send your first message.",
        "points": 10, "hidden": False, "role_id": None, "total_points": 10,
        "tier": {"name": "Beginner", "badge": "🥉"},
        "next_tier": {"name": "Student", "badge": "🥈", "points": 100}, "tier_percent": 10,
    }
    return NewAnnouncement(community.id, member_id, "unlock", community.general.id, payload)


async def seven_students_earn_first_lesson(
    bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> list[SimUser]:
    """Seven members finish a lesson, then a moderator adds an achievement they all meet at once."""
    members = [simulator.create_user(f"student{i}") for i in range(7)]
    for member in members:
        simulator.add_member(community.id, member.id)
        await bot.management.add_stat(community.id, community.moderator.id, member.id, "lessons_finished", 1)
    await bot.management.add_achievement(
        community.id, community.moderator.id, name="First Lesson", description="Finish a lesson.", points=10,
        condition="lessons_finished >= 1",
    )
    return members


# ------------------------------------------------------------------ what is posted
async def test_chatterbox_announcement_shows_name_description_points_rarity_and_tier_progress(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    general = community.general.id
    await post(simulator, general, community.bob.id, 10)
    await post(simulator, general, community.moderator.id, 1)
    await wait_announced(simulator, general, "Chatterbox")
    await post(simulator, general, community.alice.id, 10)

    messages = await simulator.wait_for(
        lambda: [m for m in unlock_named(announcements(simulator, general), "Chatterbox")
                 if m["content"] == f"<@{community.alice.id}>"]
    )
    assert len(messages) == 1
    embed = messages[0]["embeds"][0]
    assert embed["title"] == "🏆 Achievement unlocked!"
    shown = fields(messages[0])
    assert shown["Chatterbox"] == "Send 10 messages."
    assert shown["Points"] == "+25 (total 35)"  # First Step's 10 and Chatterbox's 25
    assert shown["Rarity"] == "50% of members have this"  # bob and alice, of the four humans in the guild
    assert shown["Tier"].startswith("🥉 Beginner → 🥈 Student\n")
    assert shown["Tier"].endswith("35% (35/100 pts)")


async def test_announcement_pings_only_the_member_even_if_the_achievement_text_mentions_everyone(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    role = f"<@&{community.moderators.id}>"
    await running_bot.management.add_achievement(
        community.id, community.moderator.id, name=f"@everyone party {role}",
        description=f"Wake up @everyone and @here and {role}!", points=5, condition="messages >= 2",
    )
    await post(simulator, community.general.id, community.alice.id, 2)

    [message] = await wait_announced(simulator, community.general.id, f"@everyone party {role}")
    assert message["content"] == f"<@{community.alice.id}>"
    assert message["allowed_mentions"]["parse"] == []
    assert message["allowed_mentions"]["users"] == [community.alice.id]
    assert not message["allowed_mentions"].get("roles")
    assert message["mention_everyone"] is False
    assert message["mention_roles"] == []
    assert [u["id"] for u in message["mentions"]] == [str(community.alice.id)]


async def test_tier_up_is_announced_with_old_and_new_badge(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await running_bot.management.grant(community.id, community.moderator.id, community.alice.id, "conversationalist")
    tier_posts = await simulator.wait_for(lambda: [
        m for m in announcements(simulator, community.general.id) if m["embeds"][0]["title"] == "⬆️ New tier reached!"
    ])
    assert tier_posts[0]["embeds"][0]["description"] == "🥉 Beginner → **🥈 Student**"
    assert tier_posts[0]["content"] == f"<@{community.alice.id}>"


async def test_a_hidden_achievement_is_revealed_when_unlocked(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await running_bot.management.grant(community.id, community.moderator.id, community.alice.id, "insomniac")
    [message] = await wait_announced(simulator, community.general.id, "Insomniac")
    assert message["embeds"][0]["title"] == "🔓 Hidden achievement revealed!"


# ------------------------------------------------------------------ where it is posted
async def test_unlock_is_posted_in_the_announce_channel_when_one_is_set(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await running_bot.management.update_settings(
        community.id, community.moderator.id, announce_channel_id=community.announcements.id
    )
    await post(simulator, community.general.id, community.alice.id)
    await wait_announced(simulator, community.announcements.id, "First Step")
    assert announcements(simulator, community.general.id) == []


async def test_unlock_is_posted_in_the_channel_of_the_activity_without_an_announce_channel(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    chat = simulator.create_text_channel(community.id, "chat")
    await post(simulator, chat.id, community.alice.id)
    await wait_announced(simulator, chat.id, "First Step")
    assert announcements(simulator, community.general.id) == []


async def test_unlock_without_a_channel_of_its_own_is_posted_in_the_system_channel(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await running_bot.management.grant(community.id, community.moderator.id, community.alice.id, "chatterbox")
    await wait_announced(simulator, community.general.id, "Chatterbox")


async def test_unlock_falls_back_to_the_system_channel_when_the_activity_channel_refuses_the_bot(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    chat = simulator.create_text_channel(community.id, "chat")
    simulator.deny_bot(chat.id, "send_messages")
    await post(simulator, chat.id, community.alice.id)
    await wait_announced(simulator, community.general.id, "First Step")
    await settle(simulator, running_bot)
    assert announcements(simulator, chat.id) == []
    assert len(unlock_named(announcements(simulator, community.general.id), "First Step")) == 1
    assert await running_bot.storage.outbox.counts() == {"sent": 1}


# ------------------------------------------------------------------ delivery
async def test_an_announcement_whose_transaction_fails_is_never_posted(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    # A flush writes an unlock and its announcement, the announcer runs a pass meanwhile, and then the
    # flush's COMMIT fails: the unlock never happened, so nothing may be announced (the flush retried
    # would otherwise announce it a second time).
    storage = running_bot.storage
    await running_bot.recorder.guild(community.id)  # loaded, as it is once its members are active
    delivery: asyncio.Task[int] | None = None
    with pytest.raises(OSError, match="disk I/O error"):
        async with storage.db.transaction() as conn:
            await storage.outbox.add(conn, [first_step_unlock(community, community.alice.id)], clock.now())
            delivery = asyncio.create_task(running_bot.announcer.deliver_due())
            await simulator.wait_for(lambda: delivery.done() or simulator.requests_to("POST", MESSAGES))
            raise OSError("disk I/O error")
    assert delivery is not None
    await delivery
    await running_bot.announcer.wait_idle()
    assert announcements(simulator, community.general.id) == []
    assert await storage.outbox.counts() == {}


async def test_a_rate_limited_post_is_retried_and_posted_once(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    simulator.fail_next("POST", MESSAGES, status=429, retry_after=0.05)
    await post(simulator, community.general.id, community.alice.id)
    await wait_announced(simulator, community.general.id, "First Step")
    await settle(simulator, running_bot)
    assert len(announcements(simulator, community.general.id)) == 1
    assert len(simulator.requests_to("POST", MESSAGES)) == 2
    assert await running_bot.storage.outbox.counts() == {"sent": 1}


async def test_a_post_still_rate_limited_after_the_clients_retries_is_posted_once_later(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    simulator.fail_next("POST", MESSAGES, status=429, retry_after=0.01, times=5)
    await post(simulator, community.general.id, community.alice.id)
    await simulator.wait_for(lambda: len(simulator.requests_to("POST", MESSAGES)) >= 5)
    await running_bot.announcer.wait_idle()
    assert announcements(simulator, community.general.id) == []
    assert (await running_bot.storage.outbox.counts()).get("pending") == 1

    assert await retry_due(running_bot, clock) == 1
    assert await retry_due(running_bot, clock) == 0
    assert len(announcements(simulator, community.general.id)) == 1
    assert await running_bot.storage.outbox.counts() == {"sent": 1}


async def test_a_server_error_is_retried_with_backoff_and_posted_once(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    simulator.fail_next("POST", MESSAGES, status=503)
    await post(simulator, community.general.id, community.alice.id)
    await simulator.wait_for(lambda: simulator.requests_to("POST", MESSAGES))
    await running_bot.announcer.wait_idle()
    assert await running_bot.announcer.deliver_due() == 0  # not due before the backoff
    assert announcements(simulator, community.general.id) == []

    assert await retry_due(running_bot, clock) == 1
    assert len(announcements(simulator, community.general.id)) == 1
    assert await running_bot.storage.outbox.counts() == {"sent": 1}


async def test_a_post_whose_502_answer_was_lost_after_discord_created_it_appears_once(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    simulator.lose_next_response("POST", MESSAGES, status=502)
    await post(simulator, community.general.id, community.alice.id)
    await wait_announced(simulator, community.general.id, "First Step")
    await settle(simulator, running_bot)
    assert len(simulator.requests_to("POST", MESSAGES)) == 2  # discord.py retried the 502 itself
    assert len(announcements(simulator, community.general.id)) == 1
    assert await running_bot.storage.outbox.counts() == {"sent": 1}


async def test_a_post_whose_503_answer_was_lost_after_discord_created_it_appears_once_when_retried(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    simulator.lose_next_response("POST", MESSAGES, status=503)
    await post(simulator, community.general.id, community.alice.id)
    await wait_announced(simulator, community.general.id, "First Step")
    await running_bot.announcer.wait_idle()
    assert (await running_bot.storage.outbox.counts()).get("pending") == 1  # the bot saw only the 503

    clock.advance(timedelta(seconds=10))  # the first retry's backoff, well within Discord's nonce window
    await running_bot.announcer.deliver_due()
    assert len(simulator.requests_to("POST", MESSAGES)) == 2
    assert len(announcements(simulator, community.general.id)) == 1
    assert await running_bot.storage.outbox.counts() == {"sent": 1}


async def test_a_digest_posted_just_before_the_bot_stopped_is_not_posted_again_after_a_restart(
    simulator: DiscordSimulator, community: Community, bot_settings: Settings, clock: FakeClock
) -> None:
    answer = asyncio.Event()  # Discord creates the digest; its answer reaches nobody
    simulator.lose_next_response("POST", MESSAGES, status=503, hold=answer)
    try:
        async with running(bot_settings, clock=clock, ready_timeout=15, guild_ready_timeout=0.1) as bot:
            await seven_students_earn_first_lesson(bot, simulator, community)
            await simulator.wait_for(lambda: announcements(simulator, community.general.id))
            # Stopping now cancels the post in flight: the bot never learns it was posted, as after kill -9.
    finally:
        answer.set()
    stopped = await Storage.open(bot_settings.database_path)
    try:
        assert (await stopped.outbox.counts()).get("pending") == 7  # not marked sent
    finally:
        await stopped.close()

    async with running(bot_settings, clock=clock, ready_timeout=15, guild_ready_timeout=0.1) as bot:
        await simulator.wait_for(lambda: len(simulator.requests_to("POST", MESSAGES)) >= 2)
        await settle(simulator, bot)
        assert await bot.storage.outbox.counts() == {"sent": 7}
    [digest] = announcements(simulator, community.general.id)
    assert digest["embeds"][0]["title"] == "🏆 7 new achievements and tiers"


async def test_an_unlock_waiting_for_a_retry_is_dropped_when_its_achievement_is_removed(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    simulator.fail_next("POST", MESSAGES, status=503)
    await post(simulator, community.general.id, community.alice.id)
    await simulator.wait_for(lambda: simulator.requests_to("POST", MESSAGES))
    await running_bot.announcer.wait_idle()
    await running_bot.management.remove_achievement(community.id, community.moderator.id, "first-step")

    assert await retry_due(running_bot, clock) == 0
    assert announcements(simulator, community.general.id) == []
    assert await running_bot.storage.outbox.counts() == {"dropped": 1}


async def test_an_unlock_waiting_for_a_retry_is_dropped_when_it_is_revoked(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    simulator.fail_next("POST", MESSAGES, status=503)
    await post(simulator, community.general.id, community.alice.id)
    await simulator.wait_for(lambda: simulator.requests_to("POST", MESSAGES))
    await running_bot.announcer.wait_idle()
    await running_bot.management.revoke(community.id, community.moderator.id, community.alice.id, "first-step")

    assert await retry_due(running_bot, clock) == 0
    assert announcements(simulator, community.general.id) == []
    assert await running_bot.storage.outbox.counts() == {"dropped": 1}


async def test_delivery_passes_running_at_once_post_each_announcement_once(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    simulator.fail_next("POST", MESSAGES, status=503)
    await post(simulator, community.general.id, community.alice.id)
    await simulator.wait_for(lambda: simulator.requests_to("POST", MESSAGES))
    await running_bot.announcer.wait_idle()

    clock.advance(timedelta(hours=2))
    await asyncio.gather(*(running_bot.announcer.deliver_due() for _ in range(3)))
    assert len(announcements(simulator, community.general.id)) == 1
    assert await running_bot.storage.outbox.counts() == {"sent": 1}


async def test_an_announcement_nobody_can_post_is_given_up_after_retries_without_holding_up_others(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    closed = simulator.create_text_channel(community.id, "closed")
    simulator.deny_bot(closed.id, "send_messages")
    simulator.deny_bot(community.general.id, "send_messages")
    open_chat = simulator.create_text_channel(community.id, "open")
    await post(simulator, closed.id, community.alice.id)
    await post(simulator, open_chat.id, community.bob.id)
    await wait_announced(simulator, open_chat.id, "First Step")

    for _ in range(MAX_ATTEMPTS - 2):  # the first attempt was the original post
        await retry_due(running_bot, clock)
    assert await running_bot.storage.outbox.counts() == {"sent": 1, "pending": 1}  # still trying
    await retry_due(running_bot, clock)
    assert await running_bot.storage.outbox.counts() == {"sent": 1, "failed": 1}
    assert announcements(simulator, closed.id) == announcements(simulator, community.general.id) == []
    assert len(announcements(simulator, open_chat.id)) == 1


async def test_pending_announcements_are_posted_once_after_a_restart(
    simulator: DiscordSimulator, community: Community, bot_settings: Settings, clock: FakeClock
) -> None:
    simulator.deny_bot(community.general.id, "send_messages")
    async with running(bot_settings, clock=clock, ready_timeout=15, guild_ready_timeout=0.1) as bot:
        await post(simulator, community.general.id, community.alice.id, 10)
        await wait_stat(simulator, bot, community.id, community.alice.id, "messages", 10)
        await bot.recorder.flush()
        await simulator.wait_for(lambda: len(simulator.requests_to("POST", MESSAGES)) >= 2)
        await bot.announcer.wait_idle()
        assert (await bot.storage.outbox.counts()).get("pending") == 2
    assert announcements(simulator, community.general.id) == []

    simulator.set_overwrite(community.general.id, simulator.bot_user_id)  # the moderators fix the channel
    clock.advance(timedelta(hours=2))
    async with running(bot_settings, clock=clock, ready_timeout=15, guild_ready_timeout=0.1) as bot:
        await wait_announced(simulator, community.general.id, "Chatterbox")
        await bot.announcer.deliver_due()
        await bot.announcer.wait_idle()
        posted = announcements(simulator, community.general.id)
        assert [len(unlock_named(posted, name)) for name in ("First Step", "Chatterbox")] == [1, 1]
        assert len(posted) == 2
        assert await bot.storage.outbox.counts() == {"sent": 2}


async def test_many_unlocks_at_once_are_posted_as_one_digest(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    members = await seven_students_earn_first_lesson(running_bot, simulator, community)
    [digest] = await simulator.wait_for(lambda: announcements(simulator, community.general.id))
    await settle(simulator, running_bot)

    assert len(announcements(simulator, community.general.id)) == 1
    embed = digest["embeds"][0]
    assert embed["title"] == "🏆 7 new achievements and tiers"
    lines = embed["description"].splitlines()
    assert lines == [f"<@{m.id}> unlocked **First Lesson** (+10)" for m in members]
    assert sorted(digest["allowed_mentions"]["users"]) == sorted(m.id for m in members)
    assert digest["allowed_mentions"]["parse"] == []
    assert await running_bot.storage.outbox.counts() == {"sent": 7}


# ------------------------------------------------------------------ reward roles
async def test_an_achievements_reward_role_is_given_with_the_unlock(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    chatty = simulator.create_role(community.id, "Chatty", position=1)
    await running_bot.management.add_achievement(
        community.id, community.moderator.id, name="Talker", description="Say two things.", points=5,
        condition="messages >= 2", role_id=chatty.id,
    )
    await post(simulator, community.general.id, community.alice.id, 2)
    await wait_announced(simulator, community.general.id, "Talker")
    path = f"/guilds/{community.id}/members/{community.alice.id}/roles/{chatty.id}"
    assert [r.path for r in simulator.requests_to("PUT", path)] == [path]
    assert chatty.id in simulator.world.guilds[community.id].members[community.alice.id].roles


async def test_a_reward_role_above_the_bots_own_is_reported_to_moderators_and_the_unlock_still_announced(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    admins = simulator.create_role(community.id, "Admins", position=20)
    await running_bot.management.add_achievement(
        community.id, community.moderator.id, name="Talker", description="Say two things.", points=5,
        condition="messages >= 2", role_id=admins.id,
    )
    await post(simulator, community.general.id, community.alice.id, 2)
    await wait_announced(simulator, community.general.id, "Talker")

    assert admins.id not in simulator.world.guilds[community.id].members[community.alice.id].roles
    problems = [e for e in await running_bot.storage.audit.recent(community.id) if e.action == "reward-role-failed"]
    assert len(problems) == 1
    assert "Admins" in problems[0].detail
    assert "Manage Roles" in problems[0].detail


async def test_a_tiers_reward_role_is_given_when_the_tier_is_reached(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    students = simulator.create_role(community.id, "Students", position=1)
    await running_bot.management.set_tier(community.id, community.moderator.id, "Student", 100, "🥈",
                                          role_id=students.id)
    await running_bot.management.grant(community.id, community.moderator.id, community.alice.id, "conversationalist")
    await simulator.wait_for(
        lambda: students.id in simulator.world.guilds[community.id].members[community.alice.id].roles
    )
    await settle(simulator, running_bot)
    titles = [m["embeds"][0]["title"] for m in announcements(simulator, community.general.id)]
    assert sorted(titles) == ["⬆️ New tier reached!", "🏆 Achievement unlocked!"]
