"""Specification of tiers: ranks by points, progress toward the next one, and tier changes."""

import pytest

from bot.engine.tiers import DEFAULT_TIERS, UNRANKED, Tier, progress_bar, tier_change, tier_for, tier_progress


def tier_named(name: str) -> Tier:
    return next(t for t in DEFAULT_TIERS if t.name == name)


def test_default_tiers_are_the_products_five_ranks() -> None:
    assert [(t.name, t.points, t.badge) for t in DEFAULT_TIERS] == [
        ("Beginner", 0, "🥉"),
        ("Student", 100, "🥈"),
        ("Expert", 500, "🥇"),
        ("Master", 1000, "💎"),
        ("Legend", 5000, "👑"),
    ]


@pytest.mark.parametrize(
    ("points", "name"),
    [(0, "Beginner"), (99, "Beginner"), (100, "Student"), (499, "Student"), (500, "Expert"),
     (999, "Expert"), (1000, "Master"), (4999, "Master"), (5000, "Legend"), (1_000_000, "Legend")],
)
def test_tier_for_is_the_highest_tier_whose_threshold_is_reached(points: int, name: str) -> None:
    assert tier_for(points, DEFAULT_TIERS).name == name


def test_tier_for_does_not_depend_on_the_order_tiers_are_given_in() -> None:
    assert tier_for(600, list(reversed(DEFAULT_TIERS))).name == "Expert"


def test_members_below_every_threshold_are_unranked() -> None:
    tiers = [Tier("Bronze", 50, "🟫"), Tier("Silver", 200, "⬜")]

    assert tier_for(10, tiers) is UNRANKED
    assert tier_progress(10, tiers).next == tiers[0]


def test_tier_progress_shows_percent_and_points_to_the_next_tier() -> None:
    progress = tier_progress(300, DEFAULT_TIERS)

    assert progress.current.name == "Student"
    assert progress.next is not None and progress.next.name == "Expert"
    assert progress.percent == 50  # 200 of the 400 points between Student and Expert
    assert progress.points_to_next == 200


def test_tier_progress_at_a_threshold_is_zero_percent_of_the_next_tier() -> None:
    progress = tier_progress(100, DEFAULT_TIERS)

    assert progress.current.name == "Student"
    assert progress.percent == 0


def test_tier_progress_never_shows_100_percent_before_the_next_tier_is_reached() -> None:
    assert tier_progress(4999, DEFAULT_TIERS).percent == 99


def test_tier_progress_at_the_top_tier_has_no_next_tier_and_is_complete() -> None:
    progress = tier_progress(7000, DEFAULT_TIERS)

    assert progress.current.name == "Legend"
    assert progress.next is None
    assert progress.percent == 100
    assert progress.points_to_next == 0


def test_tier_change_reports_the_tier_reached_when_points_cross_a_threshold() -> None:
    assert tier_change(90, 110, DEFAULT_TIERS) == tier_named("Student")


def test_tier_change_reports_the_highest_tier_when_points_skip_a_tier() -> None:
    assert tier_change(90, 600, DEFAULT_TIERS) == tier_named("Expert")


def test_tier_change_is_none_within_a_tier() -> None:
    assert tier_change(110, 400, DEFAULT_TIERS) is None


def test_tier_change_is_none_when_points_go_down() -> None:
    assert tier_change(600, 90, DEFAULT_TIERS) is None


def test_tier_change_from_exactly_below_to_exactly_on_a_threshold() -> None:
    assert tier_change(99, 100, DEFAULT_TIERS) == tier_named("Student")


def test_a_guild_can_use_its_own_tiers_with_a_reward_role() -> None:
    tiers = [Tier("Newcomer", 0, "🌱"), Tier("Veteran", 250, "🛡️", role_id=42)]

    reached = tier_change(200, 260, tiers)

    assert reached is not None and reached.role_id == 42


@pytest.mark.parametrize(
    ("fraction", "bar"),
    [(0.0, "░░░░░░░░░░"), (0.5, "█████░░░░░"), (0.63, "██████░░░░"), (1.0, "██████████")],
)
def test_progress_bar_fills_whole_cells_for_the_fraction_done(fraction: float, bar: str) -> None:
    assert progress_bar(fraction) == bar


def test_progress_bar_clamps_out_of_range_fractions() -> None:
    assert progress_bar(-0.5, width=4) == "░░░░"
    assert progress_bar(1.7, width=4) == "████"


def test_progress_bar_of_0_3_fills_three_of_ten_despite_float_rounding() -> None:
    assert progress_bar(0.1 + 0.2) == "███░░░░░░░"
