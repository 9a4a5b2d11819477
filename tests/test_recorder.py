"""Specification of activity recording against a real database (SQLite and PostgreSQL): unlocks,
announcements, group commit."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.engine.achievements import Achievement
from bot.engine.conditions import parse_condition
from bot.engine.defaults import DEFAULT_PACK
from bot.engine.stats import Activity, ActivityKind
from bot.engine.tiers import DEFAULT_TIERS
from bot.recording import ActivityRecorder
from bot.storage import Storage
from bot.storage.outbox import OutboxItem
from tests.support.backends import Backend

GUILD = 1001
MEMBER = 7
CHANNEL = 555
START = datetime(2026, 1, 5, 12, tzinfo=UTC)  # a Monday, noon UTC: no hour rule applies
PACK_POINTS = {spec.id: spec.points for spec in DEFAULT_PACK}


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[Storage]:
    opened = await backend.open()
    yield opened
    await opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def recorder(storage: Storage, clock: FakeClock) -> AsyncIterator[ActivityRecorder]:
    # A long flush interval and no background task: the tests decide when a flush happens.
    made = ActivityRecorder(storage, clock, flush_interval=3600)
    yield made
    await made.close()


def message(member_id: int = MEMBER, at: datetime = START, guild_id: int = GUILD) -> Activity:
    return Activity(guild_id, member_id, ActivityKind.MESSAGE, at, channel_id=CHANNEL)


async def send(recorder: ActivityRecorder, count: int, member_id: int = MEMBER, at: datetime = START) -> None:
    for n in range(count):
        await recorder.record(message(member_id, at + timedelta(seconds=n)))


async def stored_unlocks(storage: Storage, member_id: int = MEMBER) -> list[str]:
    return sorted(r.achievement_id for r in await storage.members.unlocks_of(GUILD, member_id))


async def stored(storage: Storage, stat: str, member_id: int = MEMBER) -> int:
    stats, _ = await storage.members.load(GUILD, member_id)
    return stats.get(stat)


async def announcements(storage: Storage, kind: str | None = None) -> list[OutboxItem]:
    items = await storage.outbox.due(START + timedelta(days=3650), limit=10_000)
    return [i for i in items if kind is None or i.kind == kind]


def named(items: list[OutboxItem]) -> list[Any]:
    return [i.payload["name"] for i in items]


async def set_guild(recorder: ActivityRecorder, **settings: object) -> None:
    await recorder.guild(GUILD)
    async with recorder.storage.db.transaction() as conn:
        await recorder.storage.guilds.update(conn, GUILD, **settings)
    await recorder.reload_guild(GUILD)


async def add_achievement(recorder: ActivityRecorder, achievement_id: str, condition: str, points: int) -> Achievement:
    achievement = Achievement(
        id=achievement_id, name=achievement_id.title(), description="New.", points=points,
        condition=parse_condition(condition),
    )
    async with recorder.storage.db.transaction() as conn:
        await recorder.storage.achievements.save(conn, GUILD, achievement, START)
    await recorder.reload_guild(GUILD)
    return achievement


# --- A new guild ---------------------------------------------------------------------------------------


async def test_a_new_guild_gets_the_default_achievement_pack(recorder: ActivityRecorder, storage: Storage) -> None:
    await recorder.guild(GUILD)

    stored_ids = {a.id for a in await storage.achievements.list(GUILD)}

    assert stored_ids == {spec.id for spec in DEFAULT_PACK}


async def test_a_new_guild_gets_the_default_tiers(recorder: ActivityRecorder, storage: Storage) -> None:
    await recorder.guild(GUILD)

    assert await storage.tiers.list(GUILD) == list(DEFAULT_TIERS)


async def test_a_new_guild_starts_in_utc_with_yesterday_already_closed(
    recorder: ActivityRecorder, storage: Storage
) -> None:
    await recorder.guild(GUILD)

    settings = await storage.guilds.get(GUILD)

    assert settings is not None
    assert (settings.timezone, settings.last_rollover_date) == ("UTC", date(2026, 1, 4))


async def test_a_guild_that_deleted_a_default_achievement_does_not_get_it_back(
    recorder: ActivityRecorder, storage: Storage, clock: FakeClock
) -> None:
    await recorder.guild(GUILD)
    async with storage.db.transaction() as conn:
        await storage.achievements.delete(conn, GUILD, "night-owl")

    fresh = ActivityRecorder(storage, clock)
    await fresh.guild(GUILD)
    await fresh.close()

    assert "night-owl" not in {a.id for a in await storage.achievements.list(GUILD)}


# --- Unlocks and announcements -------------------------------------------------------------------------


async def test_the_first_message_unlocks_first_step(recorder: ActivityRecorder, storage: Storage) -> None:
    result = await recorder.record(message())
    await recorder.flush()

    assert [a.name for a in result.unlocked] == ["First Step"]
    assert await stored_unlocks(storage) == ["first-step"]
    assert await stored(storage, "points") == 10


async def test_an_unlock_writes_an_announcement_for_the_channel_it_happened_in(
    recorder: ActivityRecorder, storage: Storage
) -> None:
    await recorder.record(message())
    await recorder.flush()

    (item,) = await announcements(storage)

    assert (item.kind, item.guild_id, item.member_id, item.channel_id) == ("unlock", GUILD, MEMBER, CHANNEL)
    assert item.payload["name"] == "First Step"
    assert item.payload["points"] == 10
    assert item.payload["total_points"] == 10
    assert item.payload["tier"] == {"name": "Beginner", "badge": "🥉"}
    assert item.payload["next_tier"] == {"name": "Student", "badge": "🥈", "points": 100}


async def test_reaching_a_new_tier_is_announced(recorder: ActivityRecorder, storage: Storage) -> None:
    await send(recorder, 100)
    await recorder.flush()

    (tier,) = await announcements(storage, "tier")

    assert tier.payload["old_tier"] == {"name": "Beginner", "badge": "🥉"}
    assert tier.payload["new_tier"] == {"name": "Student", "badge": "🥈", "role_id": None}
    assert tier.payload["total_points"] == 135  # First Step 10 + Chatterbox 25 + Conversationalist 100


async def test_an_unlock_is_announced_only_after_it_is_committed(recorder: ActivityRecorder, storage: Storage) -> None:
    seen_at_notice: list[list[str]] = []

    async def on_commit() -> None:
        seen_at_notice.append(named(await announcements(storage)))

    recorder.committed_listeners.append(on_commit)
    await recorder.record(message())

    assert await announcements(storage) == []
    await recorder.flush()
    assert seen_at_notice == [["First Step"]]


async def test_two_hundred_concurrent_messages_cross_one_hundred_exactly_once(
    recorder: ActivityRecorder, storage: Storage
) -> None:
    moments = [START + timedelta(milliseconds=n) for n in range(200)]

    results = await asyncio.gather(*(recorder.record(message(at=at)) for at in moments))
    await recorder.flush()

    unlocked_by_calls = [a.id for r in results for a in r.unlocked]
    assert unlocked_by_calls.count("conversationalist") == 1
    assert await stored(storage, "messages") == 200
    assert await stored_unlocks(storage) == ["chatterbox", "conversationalist", "first-step"]
    assert await stored(storage, "points") == 135
    assert await storage.members.holders(GUILD, "conversationalist") == 1
    assert named(await announcements(storage, "unlock")).count("Conversationalist") == 1
    assert len(await announcements(storage, "tier")) == 1


async def test_an_early_bird_unlocks_by_the_guilds_local_hour(recorder: ActivityRecorder, storage: Storage) -> None:
    await set_guild(recorder, timezone="Pacific/Auckland")

    # 16:30 UTC on the 5th is 05:30 on the 6th in Auckland.
    await recorder.record(message(at=datetime(2026, 1, 5, 16, 30, tzinfo=UTC)))
    await recorder.flush()

    assert "early-bird" in await stored_unlocks(storage)


async def test_the_same_moment_is_not_early_in_a_utc_guild(recorder: ActivityRecorder, storage: Storage) -> None:
    await recorder.record(message(at=datetime(2026, 1, 5, 16, 30, tzinfo=UTC)))
    await recorder.flush()

    assert "early-bird" not in await stored_unlocks(storage)


async def test_a_reaction_received_at_dawn_does_not_unlock_early_bird(
    recorder: ActivityRecorder, storage: Storage
) -> None:
    at = datetime(2026, 1, 5, 5, tzinfo=UTC)

    result = await recorder.record(Activity(GUILD, MEMBER, ActivityKind.REACTION_RECEIVED, at))
    await recorder.flush()

    assert result.unlocked == []
    assert await stored(storage, "reactions_received") == 1
    assert await stored(storage, "logins") == 0


# --- Group commit ------------------------------------------------------------------------------------


async def test_nothing_reaches_the_database_before_a_flush(recorder: ActivityRecorder, storage: Storage) -> None:
    for member_id in range(1, 11):
        await send(recorder, 30, member_id)

    assert [await stored(storage, "messages", m) for m in range(1, 11)] == [0] * 10
    assert await stored_unlocks(storage, 1) == []
    assert await announcements(storage) == []


async def test_one_flush_writes_every_pending_activity(recorder: ActivityRecorder, storage: Storage) -> None:
    for member_id in range(1, 11):
        await send(recorder, 30, member_id)

    await recorder.flush()

    assert [await stored(storage, "messages", m) for m in range(1, 11)] == [30] * 10
    assert [await stored_unlocks(storage, m) for m in range(1, 11)] == [["chatterbox", "first-step"]] * 10
    assert len(await announcements(storage, "unlock")) == 20


async def test_the_snapshot_includes_changes_not_yet_flushed(recorder: ActivityRecorder) -> None:
    await send(recorder, 3)

    stats, unlocked = await recorder.snapshot(GUILD, MEMBER)

    assert stats.get("messages") == 3
    assert unlocked == {"first-step"}


async def test_the_background_flush_writes_within_its_interval(storage: Storage, clock: FakeClock) -> None:
    recorder = ActivityRecorder(storage, clock, flush_interval=0.05)
    recorder.start()
    try:
        await recorder.record(Activity(GUILD, MEMBER, ActivityKind.REACTION_GIVEN, START))
        for _ in range(100):
            if await stored(storage, "reactions_given") == 1:
                break
            await asyncio.sleep(0.01)
    finally:
        await recorder.close()

    assert await stored(storage, "reactions_given") == 1


# --- Persistence ----------------------------------------------------------------------------------------


async def test_close_flushes_pending_activity(backend: Backend, clock: FakeClock) -> None:
    storage = await backend.open()
    recorder = ActivityRecorder(storage, clock, flush_interval=3600)
    await send(recorder, 12)

    await recorder.close()
    await storage.close()

    reopened = await backend.open()
    try:
        assert await stored(reopened, "messages") == 12
        assert await stored_unlocks(reopened) == ["chatterbox", "first-step"]
    finally:
        await reopened.close()


async def test_stats_and_unlocks_survive_a_restart_without_unlocking_again(backend: Backend, clock: FakeClock) -> None:
    storage = await backend.open()
    recorder = ActivityRecorder(storage, clock, flush_interval=3600)
    await send(recorder, 5)
    await recorder.close()
    await storage.close()

    storage = await backend.open()
    recorder = ActivityRecorder(storage, clock, flush_interval=3600)
    try:
        result = await recorder.record(message(at=START + timedelta(minutes=5)))
        await recorder.flush()
        stats, unlocked = await recorder.snapshot(GUILD, MEMBER)
        first_step_notices = named(await announcements(storage)).count("First Step")
    finally:
        await recorder.close()
        await storage.close()

    assert result.unlocked == []
    assert stats.get("messages") == 6
    assert stats.get("points") == 10
    assert unlocked == {"first-step"}
    assert first_step_notices == 1


async def test_a_streak_continues_across_a_restart(backend: Backend, clock: FakeClock) -> None:
    storage = await backend.open()
    recorder = ActivityRecorder(storage, clock)
    await recorder.record(message(at=START))
    await recorder.close()
    await storage.close()

    storage = await backend.open()
    recorder = ActivityRecorder(storage, clock)
    try:
        await recorder.record(message(at=START + timedelta(days=1)))
        stats, _ = await recorder.snapshot(GUILD, MEMBER)
    finally:
        await recorder.close()
        await storage.close()

    assert (stats.get("streak"), stats.get("logins")) == (2, 2)


# --- Anti-spam --------------------------------------------------------------------------------------------


async def test_messages_inside_the_cooldown_are_not_counted(recorder: ActivityRecorder, storage: Storage) -> None:
    await set_guild(recorder, anti_spam_cooldown=10)

    counted = [
        (await recorder.record(message(at=START + timedelta(seconds=s)))).counted for s in (0, 5, 9, 10, 15, 21)
    ]
    await recorder.flush()

    assert counted == [True, False, False, True, False, True]
    assert await stored(storage, "messages") == 3


async def test_messages_shorter_than_the_minimum_length_are_not_counted(
    recorder: ActivityRecorder, storage: Storage
) -> None:
    await set_guild(recorder, anti_spam_min_length=5)

    short = await recorder.record(message(), content="hi  ")
    long_enough = await recorder.record(message(at=START + timedelta(seconds=1)), content="hello")
    await recorder.flush()

    assert (short.counted, long_enough.counted) == (False, True)
    assert await stored(storage, "messages") == 1


@pytest.mark.parametrize("content", [None, ""])
async def test_the_length_rule_is_skipped_when_the_content_is_unknown(
    recorder: ActivityRecorder, storage: Storage, content: str | None
) -> None:
    await set_guild(recorder, anti_spam_min_length=5)

    result = await recorder.record(message(), content=content)
    await recorder.flush()

    assert result.counted is True
    assert await stored(storage, "messages") == 1


async def test_a_message_not_counted_does_not_unlock_anything(recorder: ActivityRecorder, storage: Storage) -> None:
    await set_guild(recorder, anti_spam_min_length=5)

    result = await recorder.record(message(), content="ok")
    await recorder.flush()

    assert result.unlocked == []
    assert await stored_unlocks(storage) == []


# --- Grants and revokes -------------------------------------------------------------------------------


async def test_a_granted_achievement_is_stored_announced_and_adds_its_points(
    recorder: ActivityRecorder, storage: Storage
) -> None:
    result = await recorder.grant(GUILD, MEMBER, "night-owl")
    await recorder.flush()

    assert [a.id for a in result.unlocked] == ["night-owl"]
    assert await stored_unlocks(storage) == ["night-owl"]
    assert await stored(storage, "points") == PACK_POINTS["night-owl"]
    assert named(await announcements(storage)) == ["Night Owl"]


async def test_granting_an_achievement_twice_adds_nothing(recorder: ActivityRecorder, storage: Storage) -> None:
    await recorder.grant(GUILD, MEMBER, "night-owl")

    again = await recorder.grant(GUILD, MEMBER, "night-owl")
    await recorder.flush()

    assert again.counted is False
    assert await stored(storage, "points") == PACK_POINTS["night-owl"]


async def test_granting_an_unknown_achievement_changes_nothing(recorder: ActivityRecorder, storage: Storage) -> None:
    result = await recorder.grant(GUILD, MEMBER, "no-such-thing")
    await recorder.flush()

    assert result.counted is False
    assert await stored_unlocks(storage) == []


async def test_a_grant_that_crosses_a_tier_announces_the_tier(recorder: ActivityRecorder, storage: Storage) -> None:
    await recorder.grant(GUILD, MEMBER, "community-voice")  # 300 points
    await recorder.flush()

    (tier,) = await announcements(storage, "tier")
    assert tier.payload["new_tier"]["name"] == "Student"


async def test_a_revoked_achievement_takes_its_points_back(recorder: ActivityRecorder, storage: Storage) -> None:
    await send(recorder, 10)
    await recorder.flush()

    revoked = await recorder.revoke(GUILD, MEMBER, "chatterbox", PACK_POINTS["chatterbox"])
    await recorder.flush()

    assert revoked is True
    assert await stored_unlocks(storage) == ["first-step"]
    assert await stored(storage, "points") == PACK_POINTS["first-step"]
    assert await stored(storage, "achievements") == 1


async def test_revoking_an_achievement_the_member_lacks_changes_nothing(
    recorder: ActivityRecorder, storage: Storage
) -> None:
    await send(recorder, 1)

    revoked = await recorder.revoke(GUILD, MEMBER, "chatterbox", PACK_POINTS["chatterbox"])
    await recorder.flush()

    assert revoked is False
    assert await stored(storage, "points") == PACK_POINTS["first-step"]


# --- Retroactive evaluation ----------------------------------------------------------------------------


async def test_a_new_achievement_is_unlocked_retroactively_for_members_who_meet_it(
    recorder: ActivityRecorder, storage: Storage, clock: FakeClock
) -> None:
    await send(recorder, 12, member_id=1)
    await send(recorder, 3, member_id=2)
    await recorder.flush()
    dozen = await add_achievement(recorder, "dozen", "messages >= 12", 15)

    made = await recorder.reevaluate(GUILD, [dozen])
    await recorder.flush()

    assert made == 1
    assert "dozen" in await stored_unlocks(storage, 1)
    assert "dozen" not in await stored_unlocks(storage, 2)
    assert await stored(storage, "points", 1) == 10 + 25 + 15
    assert named(await announcements(storage)).count("Dozen") == 1


async def test_retroactive_evaluation_reads_members_not_in_memory(
    recorder: ActivityRecorder, storage: Storage, clock: FakeClock
) -> None:
    await send(recorder, 12)
    await recorder.close()
    fresh = ActivityRecorder(storage, clock, flush_interval=3600)
    try:
        dozen = await add_achievement(fresh, "dozen", "messages >= 12", 15)
        made = await fresh.reevaluate(GUILD, [dozen])
        await fresh.flush()
    finally:
        await fresh.close()

    assert made == 1
    assert "dozen" in await stored_unlocks(storage)


async def test_retroactive_evaluation_does_not_unlock_twice(recorder: ActivityRecorder, storage: Storage) -> None:
    await send(recorder, 12)
    dozen = await add_achievement(recorder, "dozen", "messages >= 12", 15)
    await recorder.reevaluate(GUILD, [dozen])

    again = await recorder.reevaluate(GUILD, [dozen])
    await recorder.flush()

    assert again == 0
    assert await stored(storage, "points") == 10 + 25 + 15


# --- Rollover ------------------------------------------------------------------------------------------


async def test_close_day_resets_an_inactive_members_streak_and_keeps_an_active_ones(
    recorder: ActivityRecorder, storage: Storage
) -> None:
    monday, tuesday = START, START + timedelta(days=1)
    await recorder.record(message(1, monday))
    await recorder.record(message(1, tuesday))
    await recorder.record(message(2, monday))
    await recorder.record(message(2, tuesday - timedelta(days=1, hours=1)))  # still Monday for member 2

    reset = await recorder.close_day(GUILD, tuesday.date())

    active, _ = await recorder.snapshot(GUILD, 1)
    inactive, _ = await recorder.snapshot(GUILD, 2)
    assert reset == 1
    assert (await stored(storage, "streak", 1), active.get("streak")) == (2, 2)
    assert (await stored(storage, "streak", 2), inactive.get("streak")) == (0, 0)
    assert (await stored(storage, "best_streak", 2), inactive.get("best_streak")) == (1, 1)


async def test_close_day_resets_members_who_are_only_in_the_database(
    recorder: ActivityRecorder, storage: Storage, clock: FakeClock
) -> None:
    await recorder.record(message(at=START))
    await recorder.close()
    fresh = ActivityRecorder(storage, clock, flush_interval=3600)
    try:
        reset = await fresh.close_day(GUILD, (START + timedelta(days=1)).date())
    finally:
        await fresh.close()

    assert reset == 1
    assert await stored(storage, "streak") == 0


async def test_close_day_records_the_closed_date(recorder: ActivityRecorder, storage: Storage) -> None:
    await recorder.guild(GUILD)

    await recorder.close_day(GUILD, date(2026, 1, 5))

    settings = await storage.guilds.get(GUILD)
    assert settings is not None and settings.last_rollover_date == date(2026, 1, 5)
    assert (await recorder.guild(GUILD)).settings.last_rollover_date == date(2026, 1, 5)


async def test_after_a_rollover_the_next_activity_starts_a_new_streak(
    recorder: ActivityRecorder, storage: Storage
) -> None:
    await recorder.record(message(at=START))
    await recorder.record(message(at=START + timedelta(days=1)))
    await recorder.close_day(GUILD, (START + timedelta(days=2)).date())

    await recorder.record(message(at=START + timedelta(days=3)))
    await recorder.flush()

    assert (await stored(storage, "streak"), await stored(storage, "best_streak")) == (1, 2)


# --- Guild isolation -------------------------------------------------------------------------------------


async def test_activity_in_one_guild_does_not_touch_another(recorder: ActivityRecorder, storage: Storage) -> None:
    await recorder.record(message(guild_id=GUILD))
    await recorder.record(message(guild_id=2002))
    await recorder.record(message(guild_id=2002, at=START + timedelta(seconds=1)))
    await recorder.flush()

    here, _ = await storage.members.load(GUILD, MEMBER)
    there, _ = await storage.members.load(2002, MEMBER)
    assert (here.get("messages"), there.get("messages")) == (1, 2)
    assert (here.get("points"), there.get("points")) == (10, 10)


# --- A full member cache ------------------------------------------------------------------------------


async def test_activity_is_not_lost_when_the_member_cache_is_full(storage: Storage, clock: FakeClock) -> None:
    recorder = ActivityRecorder(storage, clock, flush_interval=3600, max_cached_members=1)
    try:
        await recorder.record(message(1, START))
        await recorder.record(message(2, START))
        await recorder.record(message(1, START + timedelta(seconds=1)))
        await recorder.flush()
    finally:
        await recorder.close()

    assert (await stored(storage, "messages", 1), await stored(storage, "messages", 2)) == (2, 1)


async def test_a_member_evicted_during_a_flush_is_not_unlocked_twice(storage: Storage, clock: FakeClock) -> None:
    recorder = ActivityRecorder(storage, clock, flush_interval=3600, max_cached_members=1)
    try:
        await recorder.record(message(1, START))
        flushing = asyncio.create_task(recorder.flush())
        await asyncio.sleep(0)  # the flush has taken the batch and is writing it
        await recorder.record(message(2, START))
        again = await recorder.record(message(1, START + timedelta(seconds=1)))
        await flushing
        await recorder.flush()
    finally:
        await recorder.close()

    assert again.unlocked == []
    assert await stored(storage, "messages", 1) == 2
    assert await stored(storage, "points", 1) == 10
    assert [i.member_id for i in await announcements(storage, "unlock")] == [1, 2]


async def test_concurrent_members_beyond_the_cache_size_all_count(storage: Storage, clock: FakeClock) -> None:
    recorder = ActivityRecorder(storage, clock, flush_interval=3600, max_cached_members=3)
    try:
        await asyncio.gather(*(
            recorder.record(message(member_id, START + timedelta(seconds=n)))
            for n in range(5) for member_id in range(1, 9)
        ))
        await recorder.flush()
    finally:
        await recorder.close()

    assert [await stored(storage, "messages", m) for m in range(1, 9)] == [5] * 8
    assert [await stored(storage, "points", m) for m in range(1, 9)] == [10] * 8
