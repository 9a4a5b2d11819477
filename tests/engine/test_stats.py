"""Specification of member stats: counters from activities, streaks by local day, rollover."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.engine.stats import (
    Activity,
    ActivityKind,
    MemberStats,
    apply_activity,
    close_day,
    effective_streak,
    local_date_and_hour,
    streak_after_activity,
)

UTC_ZONE = ZoneInfo("UTC")
AUCKLAND = ZoneInfo("Pacific/Auckland")
ST_JOHNS = ZoneInfo("America/St_Johns")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
NEW_YORK = ZoneInfo("America/New_York")


def message_at(at: datetime, **kwargs: object) -> Activity:
    return Activity(guild_id=1, member_id=2, kind=ActivityKind.MESSAGE, at=at, **kwargs)  # type: ignore[arg-type]


def record(stats: MemberStats, activity: Activity, tz: ZoneInfo) -> set[str]:
    day, _hour = local_date_and_hour(activity.at, tz)
    return apply_activity(stats, activity, day)


def active_on(stats: MemberStats, tz: ZoneInfo, *moments: datetime) -> MemberStats:
    for moment in moments:
        record(stats, message_at(moment), tz)
    return stats


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """A wall-clock time in `tz`, converted to UTC as activities carry it."""
    return datetime(year, month, day, hour, minute, tzinfo=tz).astimezone(UTC)


# --- Local days across timezones ------------------------------------------------------------------


def test_late_evening_utc_is_already_the_next_day_in_auckland() -> None:
    at = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)

    assert local_date_and_hour(at, UTC_ZONE) == (date(2026, 1, 5), 23)
    assert local_date_and_hour(at, AUCKLAND) == (date(2026, 1, 6), 12)


def test_half_hour_offset_of_st_johns_puts_early_utc_on_the_previous_local_day() -> None:
    at = datetime(2026, 1, 6, 2, 0, tzinfo=UTC)  # 22:30 on the 5th in Newfoundland (-3:30)

    assert local_date_and_hour(at, ST_JOHNS) == (date(2026, 1, 5), 22)


def test_quarter_hour_offset_of_kathmandu_splits_days_at_18_15_utc() -> None:
    before = datetime(2026, 1, 5, 18, 10, tzinfo=UTC)  # 23:55 local
    after = datetime(2026, 1, 5, 18, 20, tzinfo=UTC)  # 00:05 local, the next day

    assert local_date_and_hour(before, KATHMANDU) == (date(2026, 1, 5), 23)
    assert local_date_and_hour(after, KATHMANDU) == (date(2026, 1, 6), 0)


def test_two_activities_an_hour_apart_are_one_day_in_utc_but_two_days_in_auckland() -> None:
    evening = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)  # 23:30 on the 5th in Auckland
    later = datetime(2026, 1, 5, 11, 30, tzinfo=UTC)  # 00:30 on the 6th in Auckland

    in_utc = active_on(MemberStats(), UTC_ZONE, evening, later)
    in_auckland = active_on(MemberStats(), AUCKLAND, evening, later)

    assert (in_utc.get("logins"), in_utc.get("streak")) == (1, 1)
    assert (in_auckland.get("logins"), in_auckland.get("streak")) == (2, 2)


def test_activity_just_before_local_midnight_in_st_johns_counts_for_that_local_day() -> None:
    stats = active_on(
        MemberStats(),
        ST_JOHNS,
        local(ST_JOHNS, 2026, 1, 5, 23, 50),  # 03:20 UTC on the 6th
        local(ST_JOHNS, 2026, 1, 6, 0, 10),  # 03:40 UTC on the 6th
    )

    assert stats.last_active == date(2026, 1, 6)
    assert (stats.get("logins"), stats.get("streak")) == (2, 2)


def test_kathmandu_member_active_either_side_of_local_midnight_extends_the_streak() -> None:
    stats = active_on(
        MemberStats(),
        KATHMANDU,
        datetime(2026, 1, 5, 18, 10, tzinfo=UTC),
        datetime(2026, 1, 5, 18, 20, tzinfo=UTC),
    )

    assert stats.get("streak") == 2


# --- Streak rules ---------------------------------------------------------------------------------


def test_consecutive_local_days_extend_the_streak() -> None:
    start = datetime(2026, 1, 5, 12, tzinfo=UTC)

    stats = active_on(MemberStats(), UTC_ZONE, *(start + timedelta(days=n) for n in range(4)))

    assert stats.get("streak") == 4
    assert stats.get("logins") == 4


def test_a_missed_day_resets_the_streak_to_one() -> None:
    stats = active_on(
        MemberStats(),
        UTC_ZONE,
        datetime(2026, 1, 5, 12, tzinfo=UTC),
        datetime(2026, 1, 6, 12, tzinfo=UTC),
        datetime(2026, 1, 8, 12, tzinfo=UTC),
    )

    assert stats.get("streak") == 1
    assert stats.get("logins") == 3


def test_many_messages_on_one_day_count_as_one_login() -> None:
    morning = datetime(2026, 1, 5, 8, tzinfo=UTC)

    stats = active_on(MemberStats(), UTC_ZONE, *(morning + timedelta(minutes=n) for n in range(50)))

    assert stats.get("messages") == 50
    assert stats.get("logins") == 1
    assert stats.get("streak") == 1


def test_best_streak_is_kept_after_the_streak_breaks() -> None:
    first_run = [datetime(2026, 1, 5 + n, 12, tzinfo=UTC) for n in range(5)]
    after_a_gap = [datetime(2026, 1, 20 + n, 12, tzinfo=UTC) for n in range(2)]

    stats = active_on(MemberStats(), UTC_ZONE, *first_run, *after_a_gap)

    assert stats.get("streak") == 2
    assert stats.get("best_streak") == 5


def test_a_late_event_for_an_earlier_day_counts_the_message_but_not_a_new_day() -> None:
    stats = active_on(MemberStats(), UTC_ZONE, datetime(2026, 1, 6, 12, tzinfo=UTC))

    changed = record(stats, message_at(datetime(2026, 1, 5, 12, tzinfo=UTC)), UTC_ZONE)

    assert changed == {"messages"}
    assert stats.get("messages") == 2
    assert (stats.get("logins"), stats.get("streak")) == (1, 1)
    assert stats.last_active == date(2026, 1, 6)


def test_first_activity_of_a_day_reports_logins_and_streak_as_changed() -> None:
    stats = MemberStats()

    first = record(stats, message_at(datetime(2026, 1, 5, 8, tzinfo=UTC)), UTC_ZONE)
    second = record(stats, message_at(datetime(2026, 1, 5, 9, tzinfo=UTC)), UTC_ZONE)

    assert first == {"messages", "logins", "streak", "best_streak"}
    assert second == {"messages"}


@pytest.mark.parametrize(
    ("label", "days"),
    [
        ("spring forward", [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]),
        ("fall back", [date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)]),
    ],
)
def test_days_around_a_dst_change_in_new_york_are_consecutive(label: str, days: list[date]) -> None:
    # Late on the first day, late on the DST day, just after midnight on the last: elapsed real time
    # is 23 or 25 hours off from whole days, but the local dates are consecutive.
    moments = [
        local(NEW_YORK, days[0].year, days[0].month, days[0].day, 0, 1),
        local(NEW_YORK, days[1].year, days[1].month, days[1].day, 23, 59),
        local(NEW_YORK, days[2].year, days[2].month, days[2].day, 0, 1),
    ]

    stats = active_on(MemberStats(), NEW_YORK, *moments)

    assert stats.get("streak") == 3, label
    assert stats.last_active == days[2]


def test_streak_after_activity_is_a_pure_function_of_local_dates() -> None:
    day = date(2026, 3, 8)

    assert streak_after_activity(0, None, day) == (1, True)
    assert streak_after_activity(4, date(2026, 3, 7), day) == (5, True)
    assert streak_after_activity(4, day, day) == (4, False)
    assert streak_after_activity(4, date(2026, 3, 6), day) == (1, True)


# --- Effective streak and rollover ----------------------------------------------------------------


def test_effective_streak_survives_when_last_active_today_or_yesterday() -> None:
    today = date(2026, 3, 9)

    assert effective_streak(6, today, today) == 6
    assert effective_streak(6, date(2026, 3, 8), today) == 6


def test_effective_streak_is_zero_after_a_missed_day_or_never_active() -> None:
    today = date(2026, 3, 9)

    assert effective_streak(6, date(2026, 3, 7), today) == 0
    assert effective_streak(6, None, today) == 0


def test_close_day_keeps_the_streak_of_a_member_active_that_day() -> None:
    stats = MemberStats({"streak": 4, "best_streak": 4}, last_active=date(2026, 3, 8))

    lost = close_day(stats, date(2026, 3, 8))

    assert lost is False
    assert stats.get("streak") == 4


def test_close_day_resets_the_streak_of_a_member_inactive_that_day_but_keeps_best_streak() -> None:
    stats = MemberStats({"streak": 4, "best_streak": 9}, last_active=date(2026, 3, 7))

    lost = close_day(stats, date(2026, 3, 8))

    assert lost is True
    assert stats.get("streak") == 0
    assert stats.get("best_streak") == 9


def test_close_day_reports_nothing_lost_for_a_member_without_a_streak() -> None:
    stats = MemberStats({"messages": 3}, last_active=date(2026, 3, 1))

    assert close_day(stats, date(2026, 3, 8)) is False


def test_after_rollover_the_next_activity_starts_a_new_streak() -> None:
    stats = active_on(
        MemberStats(), UTC_ZONE, datetime(2026, 1, 5, 12, tzinfo=UTC), datetime(2026, 1, 6, 12, tzinfo=UTC)
    )
    close_day(stats, date(2026, 1, 7))

    record(stats, message_at(datetime(2026, 1, 8, 12, tzinfo=UTC)), UTC_ZONE)

    assert stats.get("streak") == 1
    assert stats.get("best_streak") == 2


# --- Kinds of activity ----------------------------------------------------------------------------


def test_reactions_given_count_and_make_the_member_active() -> None:
    stats = MemberStats()
    activity = Activity(1, 2, ActivityKind.REACTION_GIVEN, datetime(2026, 1, 5, 12, tzinfo=UTC))

    record(stats, activity, UTC_ZONE)

    assert stats.get("reactions_given") == 1
    assert stats.get("logins") == 1


def test_a_reaction_received_counts_but_does_not_make_the_member_active() -> None:
    stats = MemberStats()
    activity = Activity(1, 2, ActivityKind.REACTION_RECEIVED, datetime(2026, 1, 5, 12, tzinfo=UTC))

    changed = record(stats, activity, UTC_ZONE)

    assert changed == {"reactions_received"}
    assert stats.get("reactions_received") == 1
    assert (stats.get("logins"), stats.get("streak"), stats.last_active) == (0, 0, None)


def test_presence_only_marks_the_member_active() -> None:
    stats = MemberStats()
    activity = Activity(1, 2, ActivityKind.PRESENCE, datetime(2026, 1, 5, 12, tzinfo=UTC))

    changed = record(stats, activity, UTC_ZONE)

    assert changed == {"logins", "streak", "best_streak"}
    assert stats.get("messages") == 0


def test_custom_stat_is_added_by_its_amount() -> None:
    stats = MemberStats()
    activity = Activity(
        1, 2, ActivityKind.CUSTOM, datetime(2026, 1, 5, 12, tzinfo=UTC), stat="tasks_completed", amount=3,
        counts_as_active=False,
    )

    changed = record(stats, activity, UTC_ZONE)
    record(stats, activity, UTC_ZONE)

    assert changed == {"tasks_completed"}
    assert stats.get("tasks_completed") == 6


def test_custom_activity_without_a_stat_name_is_refused() -> None:
    activity = Activity(1, 2, ActivityKind.CUSTOM, datetime(2026, 1, 5, 12, tzinfo=UTC))

    with pytest.raises(ValueError, match="stat name"):
        record(MemberStats(), activity, UTC_ZONE)
