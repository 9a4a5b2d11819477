"""Leaderboard maths: competition ranking (1, 2, 2, 4), Top X%, medals."""

from __future__ import annotations

import math
from collections.abc import Sequence

MEDALS = {1: "🥇", 2: "🥈", 3: "🥉"}


def competition_ranks(points_desc: Sequence[int], offset: int = 0, first_rank: int | None = None) -> list[int]:
    """Ranks for rows sorted by points, high to low; equal points share a rank (1, 2, 2, 4).

    For a page that starts at global position `offset` (0-based), pass the rank of its first row
    (1 + how many members have more points), since that row may tie with rows on the previous page.
    """
    ranks: list[int] = []
    for index, points in enumerate(points_desc):
        if index == 0:
            ranks.append(first_rank if first_rank is not None else offset + 1)
        elif points == points_desc[index - 1]:
            ranks.append(ranks[-1])
        else:
            ranks.append(offset + index + 1)
    return ranks


def top_percent(rank: int, members: int) -> str:
    """"Top X%" with X = rank / members × 100: whole numbers, one decimal under 1%."""
    if members <= 0 or rank <= 0:
        return "Unranked"
    x = rank / members * 100
    tenths = max(1, math.floor(x * 10 + 0.5))  # half up, never "Top 0%"
    if tenths < 10:
        return f"Top {tenths / 10:.1f}%"
    return f"Top {math.floor(x + 0.5)}%"


def medal(rank: int) -> str:
    return MEDALS.get(rank, "")
