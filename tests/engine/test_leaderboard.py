"""Specification of leaderboard maths: competition ranks, Top X%, medals."""

import pytest

from bot.engine.leaderboard import competition_ranks, medal, top_percent


def test_distinct_points_rank_one_two_three() -> None:
    assert competition_ranks([300, 200, 100]) == [1, 2, 3]


def test_equal_points_share_a_rank_and_the_next_rank_is_skipped() -> None:
    assert competition_ranks([50, 40, 40, 30]) == [1, 2, 2, 4]


def test_a_tie_for_first_place() -> None:
    assert competition_ranks([90, 90, 90, 10]) == [1, 1, 1, 4]


def test_everyone_tied_shares_rank_one() -> None:
    assert competition_ranks([0, 0, 0]) == [1, 1, 1]


def test_an_empty_page_has_no_ranks() -> None:
    assert competition_ranks([]) == []


def test_a_later_page_continues_the_ranks_from_its_offset() -> None:
    # Page 2 (rows 11..13) of a board whose first page had no tie reaching into it.
    assert competition_ranks([70, 60, 60], offset=10) == [11, 12, 12]


def test_a_tie_crossing_the_page_boundary_keeps_the_shared_rank_on_the_next_page() -> None:
    board = [100, 90, 80, 80, 80, 70, 60]  # ranks 1, 2, 3, 3, 3, 6, 7
    page_size = 4

    first_page = competition_ranks(board[:page_size])
    # The second page starts with an 80: one more of the three members tied for rank 3.
    first_rank = 1 + sum(1 for points in board if points > board[page_size])
    second_page = competition_ranks(board[page_size:], offset=page_size, first_rank=first_rank)

    assert first_page == [1, 2, 3, 3]
    assert second_page == [3, 6, 7]


def test_a_page_made_only_of_a_tie_from_the_previous_page_shares_that_rank() -> None:
    assert competition_ranks([5, 5], offset=20, first_rank=18) == [18, 18]


@pytest.mark.parametrize(
    ("rank", "members", "label"),
    [(1, 1, "Top 100%"), (3, 100, "Top 3%"), (1, 4, "Top 25%"), (2, 3, "Top 67%"), (50, 100, "Top 50%")],
)
def test_top_percent_is_rank_over_members_in_whole_percent(rank: int, members: int, label: str) -> None:
    assert top_percent(rank, members) == label


@pytest.mark.parametrize(
    ("rank", "members", "label"),
    [(1, 200, "Top 0.5%"), (3, 1000, "Top 0.3%"), (1, 1000, "Top 0.1%")],
)
def test_top_percent_under_one_percent_shows_one_decimal(rank: int, members: int, label: str) -> None:
    assert top_percent(rank, members) == label


def test_top_percent_never_shows_zero_for_a_ranked_member_of_a_huge_guild() -> None:
    assert top_percent(1, 1_000_000) == "Top 0.1%"


def test_top_percent_of_an_empty_board_is_unranked() -> None:
    assert top_percent(1, 0) == "Unranked"


@pytest.mark.parametrize(("rank", "badge"), [(1, "🥇"), (2, "🥈"), (3, "🥉"), (4, ""), (100, "")])
def test_medals_go_to_the_first_three_ranks(rank: int, badge: str) -> None:
    assert medal(rank) == badge


def test_members_tied_for_second_both_get_silver() -> None:
    ranks = competition_ranks([50, 40, 40, 30])

    assert [medal(r) for r in ranks] == ["🥇", "🥈", "🥈", ""]


@pytest.mark.parametrize(
    ("rank", "members", "shown"),
    [(1, 8, "Top 13%"), (99, 10_000, "Top 1%"), (96, 10_000, "Top 1%"), (1, 1_000_000, "Top 0.1%")],
)
def test_top_percent_rounds_half_up_and_never_shows_one_point_zero(rank: int, members: int, shown: str) -> None:
    assert top_percent(rank, members) == shown
