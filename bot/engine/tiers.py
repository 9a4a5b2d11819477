"""Tiers: ranks by points, with the product's defaults and the maths a profile shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    points: int  # points needed to reach it
    badge: str
    role_id: int | None = None


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("Beginner", 0, "🥉"),
    Tier("Student", 100, "🥈"),
    Tier("Expert", 500, "🥇"),
    Tier("Master", 1000, "💎"),
    Tier("Legend", 5000, "👑"),
)

# Members below every tier's threshold (a guild whose lowest tier starts above 0) have this one.
UNRANKED = Tier("Unranked", 0, "▫️")


@dataclass(frozen=True, slots=True)
class TierProgress:
    current: Tier
    next: Tier | None
    percent: int  # 0..100 toward `next`; 100 when there is no next tier
    points_to_next: int


def sorted_tiers(tiers: Sequence[Tier]) -> list[Tier]:
    return sorted(tiers, key=lambda t: t.points)


def tier_for(points: int, tiers: Sequence[Tier]) -> Tier:
    current = UNRANKED
    for tier in sorted_tiers(tiers):
        if points >= tier.points:
            current = tier
        else:
            break
    return current


def tier_progress(points: int, tiers: Sequence[Tier]) -> TierProgress:
    ordered = sorted_tiers(tiers)
    current = tier_for(points, ordered)
    upcoming = [t for t in ordered if t.points > points]
    if not upcoming:
        return TierProgress(current, None, 100, 0)
    nxt = upcoming[0]
    floor = current.points if current is not UNRANKED else 0
    span = max(1, nxt.points - floor)
    percent = max(0, min(99, (points - floor) * 100 // span))
    return TierProgress(current, nxt, percent, nxt.points - points)


def tier_change(old_points: int, new_points: int, tiers: Sequence[Tier]) -> Tier | None:
    """The newly reached tier when points went up across a threshold, else None."""
    if new_points <= old_points:
        return None
    old, new = tier_for(old_points, tiers), tier_for(new_points, tiers)
    return new if new != old else None


def progress_bar(fraction: float, width: int = 10) -> str:
    filled = max(0, min(width, int(fraction * width + 1e-9)))
    return "█" * filled + "░" * (width - filled)
