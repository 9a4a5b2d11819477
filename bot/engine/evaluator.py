"""Unlock decisions: which achievements a member earns after their stats changed, cascades included."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.engine.achievements import Achievement
from bot.engine.stats import MemberStats
from bot.engine.tiers import Tier, tier_change

# Unlocking raises these two, which other achievements may read (an achievement for 10 achievements).
CASCADE_STATS = frozenset({"points", "achievements"})


class RuleBook:
    """A guild's achievements indexed by the stats their conditions read, so an activity only
    evaluates the rules it can affect."""

    def __init__(self, achievements: Iterable[Achievement]) -> None:
        self.achievements: tuple[Achievement, ...] = tuple(achievements)
        self.by_id: dict[str, Achievement] = {a.id: a for a in self.achievements}
        by_stat: dict[str, list[Achievement]] = {}
        for achievement in self.achievements:
            for stat in sorted(achievement.condition.stats):
                by_stat.setdefault(stat, []).append(achievement)
        self._by_stat = {stat: tuple(rules) for stat, rules in by_stat.items()}
        self._hour_rules = tuple(a for a in self.achievements if a.condition.uses_hour)
        self._candidates: dict[tuple[frozenset[str], bool], tuple[Achievement, ...]] = {}

    def rules_reading(self, stat: str) -> tuple[Achievement, ...]:
        return self._by_stat.get(stat, ())

    def candidates(self, changed: Iterable[str], include_hour_rules: bool) -> tuple[Achievement, ...]:
        """Rules reading any of `changed` (and the time-of-day rules if asked), each once, in a stable
        order. Activities change few distinct sets of stats, so the answer is cached per set."""
        key = (frozenset(changed), include_hour_rules)
        found = self._candidates.get(key)
        if found is None:
            found = self._candidates[key] = tuple(self._find_candidates(key[0], include_hour_rules))
        return found

    def _find_candidates(self, changed: Iterable[str], include_hour_rules: bool) -> list[Achievement]:
        seen: set[str] = set()
        found: list[Achievement] = []
        groups: list[tuple[Achievement, ...]] = [self._by_stat.get(stat, ()) for stat in changed]
        if include_hour_rules:
            groups.append(self._hour_rules)
        for group in groups:
            for achievement in group:
                if achievement.id not in seen:
                    seen.add(achievement.id)
                    found.append(achievement)
        return found


@dataclass(slots=True)
class Evaluation:
    unlocked: list[Achievement] = field(default_factory=list)
    tier_reached: Tier | None = None

    @property
    def points_gained(self) -> int:
        return sum(a.points for a in self.unlocked)


def evaluate(
    stats: MemberStats,
    unlocked_ids: set[str],
    rulebook: RuleBook,
    changed: Iterable[str],
    now: datetime,
    hour: int | None,
    tiers: Sequence[Tier],
) -> Evaluation:
    """Unlock every achievement the member now meets, each once; mutates `stats` and `unlocked_ids`.

    Rules are evaluated only if they read a changed stat (or the hour of the triggering activity);
    unlocks raise `points` and `achievements`, which may unlock more: that settles here too.
    """
    result = Evaluation()
    old_points = stats.get("points")
    pending: Iterable[str] = changed
    include_hour = hour is not None
    values = stats.values
    while True:
        unlocked_this_round = False
        for achievement in rulebook.candidates(pending, include_hour):
            if achievement.id in unlocked_ids:
                continue
            if (achievement.starts is not None or achievement.ends is not None) and not achievement.unlockable_at(now):
                continue
            if achievement.condition.evaluate(values, hour):
                unlocked_ids.add(achievement.id)
                values["points"] = values.get("points", 0) + achievement.points
                values["achievements"] = values.get("achievements", 0) + 1
                result.unlocked.append(achievement)
                unlocked_this_round = True
        if not unlocked_this_round:
            break
        pending, include_hour = CASCADE_STATS, False
    result.tier_reached = tier_change(old_points, stats.get("points"), tiers)
    return result


def evaluate_all(
    stats: MemberStats,
    unlocked_ids: set[str],
    rulebook: RuleBook,
    now: datetime,
    tiers: Sequence[Tier],
    only: Sequence[Achievement] | None = None,
) -> Evaluation:
    """Evaluate every stat-based rule (or `only` these) without an activity: retroactive checks and
    grants. Time-of-day parts read no hour here, so they stay false."""
    targets = only if only is not None else rulebook.achievements
    changed = {stat for a in targets for stat in a.condition.stats} | CASCADE_STATS
    return evaluate(stats, unlocked_ids, rulebook, changed, now, None, tiers)
