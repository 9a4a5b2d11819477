"""Embeds stay inside Discord's limits whatever moderators typed."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.engine.achievements import Achievement, WindowState
from bot.engine.conditions import parse_condition
from bot.profiles import AchievementStatus
from bot.render import achievements_embed

NOW = datetime(2026, 1, 5, tzinfo=UTC)


def long_achievement(index: int) -> AchievementStatus:
    condition = parse_condition(" and ".join(f"course_{index}_{part:02d} >= 1" for part in range(20)))
    achievement = Achievement(f"course-{index}", f"Course {index} " + "x" * 90, "d" * 1000, 100, condition)
    return AchievementStatus(achievement, None, condition.progress({}), WindowState.ALWAYS)


def test_a_page_of_achievements_with_long_conditions_fits_and_names_every_entry() -> None:
    statuses = [long_achievement(i) for i in range(8)]
    embed, pages = achievements_embed(statuses, 0, 8, "alice", NOW)
    assert pages == 1
    assert embed.description is not None and len(embed.description) <= 4096
    for index in range(8):
        assert f"Course {index} " in embed.description
    assert "+17 more" in embed.description
