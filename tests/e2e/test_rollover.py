"""The midnight rollover under a controlled clock: streaks, each guild's local midnight, and the catch-up of
rollovers missed while the bot was down."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.app import AchievementsBot, running
from bot.clock import FakeClock
from bot.settings import Settings
from discord_sim import DiscordSimulator
from tests.e2e.activity_support import stats_of, wait_stat
from tests.e2e.conftest import Community

KATHMANDU = "Asia/Kathmandu"  # UTC+05:45
ST_JOHNS = "America/St_Johns"  # UTC-03:30, -02:30 in summer


async def test_rollover_resets_an_inactive_members_streak_and_keeps_an_active_ones(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    guild, alice, bob = community.id, community.alice.id, community.bob.id
    for member in (alice, bob):
        await simulator.send_message(community.general.id, member, "monday")
        await wait_stat(simulator, running_bot, guild, member, "messages", 1)
    clock.advance(timedelta(days=1))  # Tuesday: only alice shows up
    await simulator.send_message(community.general.id, alice, "tuesday")
    await wait_stat(simulator, running_bot, guild, alice, "streak", 2)

    clock.set(datetime(2026, 1, 7, 0, 5, tzinfo=UTC))
    assert await running_bot.scheduler.run_due_rollovers() == {guild: date(2026, 1, 6)}

    alice_stats, bob_stats = await stats_of(running_bot, guild, alice), await stats_of(running_bot, guild, bob)
    assert (alice_stats["streak"], alice_stats["best_streak"]) == (2, 2)
    assert (bob_stats["streak"], bob_stats["best_streak"]) == (0, 1)
    await running_bot.recorder.flush()  # everything written: the database says the same
    stored, _ = await running_bot.storage.members.load(guild, bob)
    assert stored.get("streak") == 0


async def test_rollover_happens_at_the_guilds_local_midnight_not_utcs(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    await running_bot.management.update_settings(community.id, community.moderator.id, timezone=KATHMANDU)
    await simulator.send_message(community.general.id, community.bob.id, "namaste")  # 17:45 on 5 January there
    await wait_stat(simulator, running_bot, community.id, community.bob.id, "streak", 1)

    clock.set(datetime(2026, 1, 5, 18, 10, tzinfo=UTC))  # 23:55 in Kathmandu
    assert await running_bot.scheduler.run_due_rollovers() == {}
    clock.set(datetime(2026, 1, 5, 18, 16, tzinfo=UTC))  # 00:01 on 6 January there
    assert await running_bot.scheduler.run_due_rollovers() == {community.id: date(2026, 1, 5)}
    assert (await stats_of(running_bot, community.id, community.bob.id))["streak"] == 1  # active on the 5th

    clock.set(datetime(2026, 1, 6, 18, 16, tzinfo=UTC))  # a whole local day without bob
    assert await running_bot.scheduler.run_due_rollovers() == {community.id: date(2026, 1, 6)}
    assert (await stats_of(running_bot, community.id, community.bob.id))["streak"] == 0


@pytest.mark.parametrize(
    ("timezone", "utc_offsets"),
    [
        (KATHMANDU, {timedelta(hours=5, minutes=45)}),
        (ST_JOHNS, {timedelta(hours=-3, minutes=-30), timedelta(hours=-2, minutes=-30)}),
    ],
)
async def test_each_guild_has_a_rollover_job_at_its_local_midnight(
    running_bot: AchievementsBot, community: Community, timezone: str, utc_offsets: set[timedelta]
) -> None:
    await running_bot.management.update_settings(community.id, community.moderator.id, timezone=timezone)

    next_run = running_bot.scheduler.next_rollover(community.id)
    assert isinstance(next_run, datetime)
    local = next_run.astimezone(ZoneInfo(timezone))
    assert time(0, 0) <= local.time() < time(0, 1)
    assert local.utcoffset() in utc_offsets
    if timezone == KATHMANDU:
        assert next_run.astimezone(UTC).time().replace(second=0) == time(18, 15)


async def test_missed_rollovers_run_once_per_guild_and_local_date_at_start_up(
    simulator: DiscordSimulator, community: Community, bot_settings: Settings, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    night_owls = simulator.create_guild("Night Owls", owner_id=community.owner.id)
    simulator.add_member(night_owls.id, community.alice.id)
    owls_general = night_owls.system_channel_id or 0
    async with running(bot_settings, clock=clock, ready_timeout=15, guild_ready_timeout=0.1) as bot:
        await bot.management.update_settings(night_owls.id, community.owner.id, timezone=KATHMANDU)
        await simulator.send_message(community.general.id, community.alice.id, "hi hall")
        await simulator.send_message(owls_general, community.alice.id, "hi owls")
        await wait_stat(simulator, bot, community.id, community.alice.id, "streak", 1)
        await wait_stat(simulator, bot, night_owls.id, community.alice.id, "streak", 1)

    clock.advance(timedelta(days=3))  # down from Monday noon to Thursday noon (UTC)
    caplog.set_level(logging.INFO, logger="bot.scheduler")
    async with running(bot_settings, clock=clock, ready_timeout=15, guild_ready_timeout=0.1) as bot:
        rollovers = [r.getMessage() for r in caplog.records if "rollover of" in r.getMessage()]
        assert sorted(rollovers) == sorted([
            f"guild {community.id}: rollover of 2026-01-07, 1 streaks reset",
            f"guild {night_owls.id}: rollover of 2026-01-07, 1 streaks reset",
        ])
        for guild in (community.id, night_owls.id):
            settings = await bot.storage.guilds.get(guild)
            assert settings is not None
            assert settings.last_rollover_date == date(2026, 1, 7)
            stats = await stats_of(bot, guild, community.alice.id)
            assert (stats.get("streak", 0), stats["best_streak"]) == (0, 1)

        assert await bot.scheduler.run_due_rollovers() == {}
        assert len([r for r in caplog.records if "rollover of" in r.getMessage()]) == 2


async def test_a_day_without_a_midnight_is_still_closed_by_the_sweep(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, clock: FakeClock
) -> None:
    # Chile starts summer time at 00:00 on 2026-09-06: clocks jump to 01:00, so cron's 00:00 never comes.
    santiago = ZoneInfo("America/Santiago")
    guild, bob = community.id, community.bob.id
    await running_bot.management.update_settings(guild, community.moderator.id, timezone="America/Santiago")
    clock.set(datetime(2026, 9, 4, 12, 0, tzinfo=santiago))
    await simulator.send_message(community.general.id, bob, "friday")
    await wait_stat(simulator, running_bot, guild, bob, "streak", 1)
    clock.set(datetime(2026, 9, 6, 1, 20, tzinfo=santiago))  # Sunday, after the jump; Saturday had no activity

    sweep = running_bot.scheduler._apscheduler.get_job("rollover:sweep")
    assert sweep is not None and sweep.trigger.interval == timedelta(minutes=15)
    assert await running_bot.scheduler.run_due_rollovers() == {guild: date(2026, 9, 5)}
    assert (await stats_of(running_bot, guild, bob))["streak"] == 0
