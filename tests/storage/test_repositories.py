"""Specification of the repositories on both backends (a real SQLite file, a real PostgreSQL database): round
trips, isolation, persistence."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.engine.achievements import Achievement
from bot.engine.conditions import parse_condition
from bot.engine.stats import MemberStats
from bot.engine.tiers import DEFAULT_TIERS, Tier
from bot.storage import GuildSettings, NewAnnouncement, Storage
from tests.support.backends import Backend

GUILD = 1001
OTHER_GUILD = 2002
NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[Storage]:
    opened = await backend.open()
    yield opened
    await opened.close()


def achievement(achievement_id: str, name: str, condition: str, points: int = 10, **flags: object) -> Achievement:
    return Achievement(
        id=achievement_id, name=name, description=f"{name}!", points=points, condition=parse_condition(condition),
        **flags,  # type: ignore[arg-type]
    )


async def store_achievements(storage: Storage, *ids: str, guild_id: int = GUILD) -> None:
    """Achievements worth 10 points each: an unlock is stored only for an achievement that exists."""
    async with storage.db.transaction() as conn:
        for achievement_id in ids:
            await storage.achievements.save(conn, guild_id, achievement(achievement_id, achievement_id.title(),
                                                                        "messages >= 1"), NOW)


async def add_guild(storage: Storage, guild_id: int = GUILD, **settings: object) -> None:
    async with storage.db.transaction() as conn:
        await storage.guilds.insert(conn, GuildSettings(guild_id=guild_id, **settings), NOW)  # type: ignore[arg-type]


async def save_members(storage: Storage, *rows: tuple[int, int, MemberStats]) -> None:
    async with storage.db.transaction() as conn:
        await storage.members.save_stats(conn, rows)


# --- Guild settings ---------------------------------------------------------------------------------


async def test_a_new_guild_has_default_settings(storage: Storage) -> None:
    await add_guild(storage)

    assert await storage.guilds.get(GUILD) == GuildSettings(guild_id=GUILD)


async def test_an_unknown_guild_has_no_settings(storage: Storage) -> None:
    assert await storage.guilds.get(GUILD) is None


async def test_inserting_a_guild_twice_keeps_the_first_row(storage: Storage) -> None:
    await add_guild(storage, timezone="Asia/Kathmandu")

    async with storage.db.transaction() as conn:
        created = await storage.guilds.insert(conn, GuildSettings(guild_id=GUILD, timezone="UTC"), NOW)

    assert created is False
    settings = await storage.guilds.get(GUILD)
    assert settings is not None and settings.timezone == "Asia/Kathmandu"


async def test_guild_settings_round_trip_after_an_update(storage: Storage) -> None:
    await add_guild(storage)

    async with storage.db.transaction() as conn:
        await storage.guilds.update(
            conn, GUILD, timezone="Pacific/Auckland", announce_channel_id=555, anti_spam_cooldown=30,
            anti_spam_min_length=5, cards_enabled=False,
        )
        await storage.guilds.set_last_rollover(conn, GUILD, date(2026, 1, 4))

    assert await storage.guilds.get(GUILD) == GuildSettings(
        guild_id=GUILD, timezone="Pacific/Auckland", announce_channel_id=555, anti_spam_cooldown=30,
        anti_spam_min_length=5, cards_enabled=False, last_rollover_date=date(2026, 1, 4),
    )


async def test_updating_a_column_that_is_not_a_setting_is_refused_and_changes_nothing(storage: Storage) -> None:
    await add_guild(storage)

    with pytest.raises(ValueError, match="not a guild setting"):
        async with storage.db.transaction() as conn:
            await storage.guilds.update(conn, GUILD, timezone="Europe/Paris", created_at="x")

    settings = await storage.guilds.get(GUILD)
    assert settings is not None and settings.timezone == "UTC"


async def test_all_guilds_are_listed_in_id_order(storage: Storage) -> None:
    await add_guild(storage, OTHER_GUILD)
    await add_guild(storage, GUILD)

    assert [g.guild_id for g in await storage.guilds.all()] == [GUILD, OTHER_GUILD]


async def test_a_failed_transaction_writes_nothing(storage: Storage) -> None:
    with pytest.raises(RuntimeError):
        async with storage.db.transaction() as conn:
            await storage.guilds.insert(conn, GuildSettings(guild_id=GUILD), NOW)
            raise RuntimeError("boom")

    assert await storage.guilds.get(GUILD) is None


# --- Tiers ------------------------------------------------------------------------------------------


async def test_default_tiers_round_trip(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.tiers.insert_defaults(conn, GUILD)

    assert await storage.tiers.list(GUILD) == list(DEFAULT_TIERS)


async def test_a_tier_upserted_by_name_replaces_the_old_one(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.tiers.insert_defaults(conn, GUILD)
        await storage.tiers.upsert(conn, GUILD, Tier("student", 150, "📘", role_id=77))

    tiers = await storage.tiers.list(GUILD)
    assert Tier("student", 150, "📘", 77) in tiers
    assert [t.name for t in tiers] == ["Beginner", "student", "Expert", "Master", "Legend"]


async def test_a_tier_upserted_at_an_existing_threshold_replaces_that_tier(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.tiers.insert_defaults(conn, GUILD)
        await storage.tiers.upsert(conn, GUILD, Tier("Scholar", 100, "🎓"))

    assert [t.name for t in await storage.tiers.list(GUILD)] == ["Beginner", "Scholar", "Expert", "Master", "Legend"]


async def test_removing_a_tier_by_name_ignores_case(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.tiers.insert_defaults(conn, GUILD)
        removed = await storage.tiers.remove(conn, GUILD, "legend")
        missing = await storage.tiers.remove(conn, GUILD, "Nobody")

    assert (removed, missing) == (True, False)
    assert "Legend" not in [t.name for t in await storage.tiers.list(GUILD)]


async def test_tiers_of_one_guild_are_not_seen_by_another(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.tiers.insert_defaults(conn, GUILD)
        await storage.tiers.upsert(conn, OTHER_GUILD, Tier("Only", 0, "⭐"))

    assert await storage.tiers.list(OTHER_GUILD) == [Tier("Only", 0, "⭐")]
    assert len(await storage.tiers.list(GUILD)) == len(DEFAULT_TIERS)


# --- Audit log -------------------------------------------------------------------------------------


async def test_audit_entries_come_back_newest_first(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.audit.add(conn, GUILD, 9, "achievement.create", "first-step", NOW)
        await storage.audit.add(conn, GUILD, 9, "achievement.delete", "first-step", NOW + timedelta(minutes=1))
        await storage.audit.add(conn, OTHER_GUILD, 8, "tier.set", "Gold", NOW)

    entries = await storage.audit.recent(GUILD)

    assert [(e.actor_id, e.action, e.detail) for e in entries] == [
        (9, "achievement.delete", "first-step"),
        (9, "achievement.create", "first-step"),
    ]
    assert entries[-1].created_at == NOW


async def test_audit_recent_is_limited(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        for n in range(5):
            await storage.audit.add(conn, GUILD, 9, "stat.add", f"#{n}", NOW)

    assert [e.detail for e in await storage.audit.recent(GUILD, limit=2)] == ["#4", "#3"]


# --- Achievements -------------------------------------------------------------------------------------


async def test_an_achievement_round_trips_with_all_its_flags(storage: Storage) -> None:
    advent = achievement(
        "advent", "Advent", "messages >= 24 and streak >= 3", points=240, hidden=True,
        starts=datetime(2026, 12, 1, tzinfo=UTC), ends=datetime(2026, 12, 25, tzinfo=UTC), role_id=4242,
    )
    async with storage.db.transaction() as conn:
        await storage.achievements.save(conn, GUILD, advent, NOW)

    assert await storage.achievements.get(GUILD, "advent") == advent


async def test_an_achievement_on_a_custom_stat_reloads(storage: Storage) -> None:
    homework = achievement("homework", "Homework", "tasks_completed >= 3")
    async with storage.db.transaction() as conn:
        await storage.achievements.save(conn, GUILD, homework, NOW)

    loaded = await storage.achievements.get(GUILD, "homework")

    assert loaded is not None
    assert loaded.condition.evaluate({"tasks_completed": 3})


async def test_saving_an_achievement_again_updates_it(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.achievements.save(conn, GUILD, achievement("talk", "Talk", "messages >= 5"), NOW)
        await storage.achievements.save(conn, GUILD, achievement("talk", "Talk More", "messages >= 50", 99), NOW)

    (only,) = await storage.achievements.list(GUILD)
    assert (only.name, only.condition.text, only.points) == ("Talk More", "messages >= 50", 99)


async def test_achievements_are_listed_by_points_then_name(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        for a in (
            achievement("b", "Bravo", "messages >= 2", 20),
            achievement("c", "Charlie", "messages >= 3", 5),
            achievement("a", "Alpha", "messages >= 1", 20),
        ):
            await storage.achievements.save(conn, GUILD, a, NOW)

    assert [a.id for a in await storage.achievements.list(GUILD)] == ["c", "a", "b"]


async def test_achievement_names_are_taken_case_insensitively_per_guild(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.achievements.save(conn, GUILD, achievement("first-step", "First Step", "messages >= 1"), NOW)

    assert await storage.achievements.name_taken(GUILD, "first step")
    assert not await storage.achievements.name_taken(GUILD, "First Step", except_id="first-step")
    assert not await storage.achievements.name_taken(OTHER_GUILD, "First Step")
    assert await storage.achievements.id_taken(GUILD, "first-step")
    assert not await storage.achievements.id_taken(OTHER_GUILD, "first-step")


async def test_a_deleted_achievement_is_gone(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.achievements.save(conn, GUILD, achievement("talk", "Talk", "messages >= 5"), NOW)
        deleted = await storage.achievements.delete(conn, GUILD, "talk")
        again = await storage.achievements.delete(conn, GUILD, "talk")

    assert (deleted, again) == (True, False)
    assert await storage.achievements.get(GUILD, "talk") is None


async def test_a_stored_achievement_with_an_unreadable_condition_is_skipped(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.achievements.save(conn, GUILD, achievement("ok", "Fine", "messages >= 1"), NOW)
        await storage.achievements.save(conn, GUILD, achievement("bad", "Broken", "messages >= 2"), NOW)
        await conn.execute("UPDATE achievements SET condition = 'messages >=' WHERE achievement_id = 'bad'")

    assert [a.id for a in await storage.achievements.list(GUILD)] == ["ok"]


# --- Member stats and unlocks --------------------------------------------------------------------------


async def test_an_unknown_member_loads_as_zeros_without_unlocks(storage: Storage) -> None:
    stats, unlocked = await storage.members.load(GUILD, 7)

    assert stats == MemberStats()
    assert unlocked == set()


async def test_member_stats_round_trip_with_custom_stats_and_last_active_day(storage: Storage) -> None:
    stats = MemberStats(
        {"messages": 12, "reactions_given": 3, "logins": 2, "streak": 2, "best_streak": 2, "points": 35,
         "achievements": 2, "tasks_completed": 4},
        last_active=date(2026, 1, 5),
    )

    await save_members(storage, (GUILD, 7, stats))
    loaded, _ = await storage.members.load(GUILD, 7)

    assert loaded == stats


async def test_saving_stats_again_overwrites_them(storage: Storage) -> None:
    await save_members(storage, (GUILD, 7, MemberStats({"messages": 1, "quests": 1})))
    await save_members(storage, (GUILD, 7, MemberStats({"messages": 9, "quests": 4})))

    loaded, _ = await storage.members.load(GUILD, 7)

    assert (loaded.get("messages"), loaded.get("quests")) == (9, 4)


async def test_member_stats_are_per_guild(storage: Storage) -> None:
    await save_members(
        storage, (GUILD, 7, MemberStats({"messages": 5})), (OTHER_GUILD, 7, MemberStats({"messages": 1}))
    )

    here, _ = await storage.members.load(GUILD, 7)
    there, _ = await storage.members.load(OTHER_GUILD, 7)

    assert (here.get("messages"), there.get("messages")) == (5, 1)


async def test_an_unlock_is_stored_once_with_its_time(storage: Storage) -> None:
    await store_achievements(storage, "first-step")
    async with storage.db.transaction() as conn:
        await storage.members.insert_unlocks(conn, [(GUILD, 7, "first-step", NOW)])
        await storage.members.insert_unlocks(conn, [(GUILD, 7, "first-step", NOW + timedelta(hours=1))])

    records = await storage.members.unlocks_of(GUILD, 7)

    assert [(r.achievement_id, r.unlocked_at) for r in records] == [("first-step", NOW)]
    assert await storage.members.holders(GUILD, "first-step") == 1


async def test_an_unlock_keeps_the_points_its_achievement_gave(storage: Storage) -> None:
    await store_achievements(storage, "first-step")
    async with storage.db.transaction() as conn:
        await storage.members.insert_unlocks(conn, [(GUILD, 7, "first-step", NOW)])

    assert [r[0] for r in await storage.db.fetch_all("SELECT points FROM unlocks WHERE member_id = 7")] == [10]


async def test_an_unlock_of_an_achievement_removed_meanwhile_is_not_stored(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.members.insert_unlocks(conn, [(GUILD, 7, "gone", NOW)])

    assert await storage.members.unlocks_of(GUILD, 7) == []


async def test_unlocks_load_with_the_member_and_list_newest_first(storage: Storage) -> None:
    await store_achievements(storage, "first-step", "chatterbox")
    async with storage.db.transaction() as conn:
        await storage.members.insert_unlocks(conn, [
            (GUILD, 7, "first-step", NOW), (GUILD, 7, "chatterbox", NOW + timedelta(days=1)),
            (OTHER_GUILD, 7, "night-owl", NOW),
        ])

    _, unlocked = await storage.members.load(GUILD, 7)
    records = await storage.members.unlocks_of(GUILD, 7)

    assert unlocked == {"first-step", "chatterbox"}
    assert [r.achievement_id for r in records] == ["chatterbox", "first-step"]


async def test_a_deleted_unlock_is_gone(storage: Storage) -> None:
    await store_achievements(storage, "first-step")
    async with storage.db.transaction() as conn:
        await storage.members.insert_unlocks(conn, [(GUILD, 7, "first-step", NOW)])
        deleted = await storage.members.delete_unlock(conn, GUILD, 7, "first-step")
        again = await storage.members.delete_unlock(conn, GUILD, 7, "first-step")

    assert (deleted, again) == (True, False)
    assert await storage.members.unlocks_of(GUILD, 7) == []


async def test_load_chunk_walks_a_guild_in_member_id_order(storage: Storage) -> None:
    await store_achievements(storage, "first-step")
    await save_members(storage, *((GUILD, m, MemberStats({"messages": m, "quests": 1})) for m in (5, 1, 3, 4, 2)))
    await save_members(storage, (OTHER_GUILD, 9, MemberStats({"messages": 1})))
    async with storage.db.transaction() as conn:
        await storage.members.insert_unlocks(conn, [(GUILD, 3, "first-step", NOW)])

    first = await storage.members.load_chunk(GUILD, 0, 2)
    second = await storage.members.load_chunk(GUILD, first[-1][0], 2)
    third = await storage.members.load_chunk(GUILD, second[-1][0], 2)
    done = await storage.members.load_chunk(GUILD, third[-1][0], 2)

    assert [m for m, _, _ in first + second + third] == [1, 2, 3, 4, 5]
    assert done == []
    assert second[0][1].get("quests") == 1
    assert second[0][2] == {"first-step"}


async def test_reset_streaks_clears_only_members_inactive_on_the_closed_day(storage: Storage) -> None:
    await save_members(
        storage,
        (GUILD, 1, MemberStats({"streak": 4, "best_streak": 4}, last_active=date(2026, 1, 5))),
        (GUILD, 2, MemberStats({"streak": 3, "best_streak": 6}, last_active=date(2026, 1, 4))),
        (OTHER_GUILD, 3, MemberStats({"streak": 2}, last_active=date(2026, 1, 1))),
    )

    reset = await storage.members.reset_streaks(GUILD, date(2026, 1, 5), chunk=1)

    active, _ = await storage.members.load(GUILD, 1)
    inactive, _ = await storage.members.load(GUILD, 2)
    elsewhere, _ = await storage.members.load(OTHER_GUILD, 3)
    assert reset == 1
    assert active.get("streak") == 4
    assert (inactive.get("streak"), inactive.get("best_streak")) == (0, 6)
    assert elsewhere.get("streak") == 2


# --- Leaderboard reads ------------------------------------------------------------------------------


async def add_scores(storage: Storage, scores: dict[int, int]) -> None:
    await save_members(storage, *((GUILD, m, MemberStats({"points": p})) for m, p in scores.items()))


async def test_leaderboard_pages_rank_ties_across_the_page_boundary(storage: Storage) -> None:
    await add_scores(storage, {1: 100, 2: 90, 3: 80, 4: 80, 5: 80, 6: 70})

    first = await storage.members.leaderboard_page(GUILD, 0, 4)
    second = await storage.members.leaderboard_page(GUILD, 4, 4)

    assert [(r.member_id, r.rank) for r in first] == [(1, 1), (2, 2), (3, 3), (4, 3)]
    assert [(r.member_id, r.rank) for r in second] == [(5, 3), (6, 6)]


async def test_members_who_left_are_not_ranked(storage: Storage) -> None:
    await add_scores(storage, {1: 100, 2: 90, 3: 80})

    await storage.members.set_in_guild(GUILD, 1, False)

    assert await storage.members.count(GUILD) == 2
    assert [r.member_id for r in await storage.members.leaderboard_page(GUILD, 0, 10)] == [2, 3]
    assert await storage.members.rank_for_points(GUILD, 90) == 1


async def test_rank_and_position_of_a_member_with_tied_points(storage: Storage) -> None:
    await add_scores(storage, {1: 100, 2: 50, 3: 50, 4: 10})

    assert await storage.members.rank_for_points(GUILD, 50) == 2
    assert await storage.members.position_of(GUILD, 3, 50) == 2


# --- Outbox -----------------------------------------------------------------------------------------


def announcement(member_id: int = 7, name: str = "First Step") -> NewAnnouncement:
    return NewAnnouncement(GUILD, member_id, "unlock", 555, {"name": name, "points": 10, "hidden": False})


async def test_an_announcement_round_trips_with_its_payload(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.outbox.add(conn, [announcement()], NOW)

    (item,) = await storage.outbox.due(NOW)

    assert (item.guild_id, item.member_id, item.kind, item.channel_id) == (GUILD, 7, "unlock", 555)
    assert item.payload == {"name": "First Step", "points": 10, "hidden": False}
    assert (item.attempts, item.created_at) == (0, NOW)


async def test_sent_announcements_are_no_longer_due(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.outbox.add(conn, [announcement(1), announcement(2)], NOW)
    first, second = await storage.outbox.due(NOW)

    await storage.outbox.mark_sent([first.id])

    assert [i.id for i in await storage.outbox.due(NOW)] == [second.id]
    assert await storage.outbox.counts(GUILD) == {"sent": 1, "pending": 1}


async def test_an_announcement_retried_later_is_due_only_then(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.outbox.add(conn, [announcement()], NOW)
    (item,) = await storage.outbox.due(NOW)
    later = NOW + timedelta(seconds=30)

    await storage.outbox.retry_later([item.id], 1, later, "503 Service Unavailable")

    assert await storage.outbox.due(NOW) == []
    assert await storage.outbox.next_due_at() == later
    (retried,) = await storage.outbox.due(later)
    assert retried.attempts == 1


async def test_an_announcement_given_up_is_failed_and_not_due(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.outbox.add(conn, [announcement()], NOW)
    (item,) = await storage.outbox.due(NOW)

    await storage.outbox.give_up([item.id], 5, "403 Missing Access")

    assert await storage.outbox.due(NOW + timedelta(days=1)) == []
    assert await storage.outbox.counts() == {"failed": 1}
    assert await storage.outbox.next_due_at() is None


async def test_an_announcement_not_yet_due_is_not_returned(storage: Storage) -> None:
    async with storage.db.transaction() as conn:
        await storage.outbox.add(conn, [announcement()], NOW)

    assert await storage.outbox.due(NOW - timedelta(seconds=1)) == []


# --- Meta -------------------------------------------------------------------------------------------


async def test_meta_values_are_set_and_replaced(storage: Storage) -> None:
    await storage.meta.set("commands_hash", "abc")
    await storage.meta.set("commands_hash", "def")

    assert await storage.meta.get("commands_hash") == "def"
    assert await storage.meta.get("missing") is None


# --- Persistence ------------------------------------------------------------------------------------


async def test_everything_committed_survives_close_and_reopen(backend: Backend) -> None:
    first = await backend.open()
    talk = achievement("talk", "Talk", "messages >= 5", hidden=True)
    stats = MemberStats({"messages": 5, "points": 10, "achievements": 1, "quests": 2}, last_active=date(2026, 1, 5))
    async with first.db.transaction() as conn:
        await first.guilds.insert(conn, GuildSettings(guild_id=GUILD, timezone="Asia/Kathmandu"), NOW)
        await first.tiers.insert_defaults(conn, GUILD)
        await first.achievements.save(conn, GUILD, talk, NOW)
        await first.members.save_stats(conn, [(GUILD, 7, stats)])
        await first.members.insert_unlocks(conn, [(GUILD, 7, "talk", NOW)])
        await first.outbox.add(conn, [announcement()], NOW)
        await first.audit.add(conn, GUILD, 9, "achievement.create", "talk", NOW)
    await first.close()

    again = await backend.open()
    try:
        settings = await again.guilds.get(GUILD)
        assert settings is not None and settings.timezone == "Asia/Kathmandu"
        assert await again.tiers.list(GUILD) == list(DEFAULT_TIERS)
        assert await again.achievements.get(GUILD, "talk") == talk
        assert await again.members.load(GUILD, 7) == (stats, {"talk"})
        assert len(await again.outbox.due(NOW)) == 1
        assert [e.detail for e in await again.audit.recent(GUILD)] == ["talk"]
    finally:
        await again.close()
