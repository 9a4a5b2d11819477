"""Unlock decisions: which achievements a member earns after their stats changed, cascades included."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.engine.achievements import Achievement
from bot.engine.stats import MemberStats
from bot.engine.tiers import Tier, tier_change

# Unlocking raises these two, which other achievements may read (an achievement for 10 achievements).
CASCADE_STATS = frozenset({"points", "achievements"})


def milestone_bound(achievement: Achievement) -> tuple[str, int] | None:
    """(stat, N) if the achievement is met exactly when one stat reaches N (`messages >= 100`,
    `logins > 4`) whatever else holds; None for any other rule (several stats, the hour, a window)."""
    condition = achievement.condition
    if condition.uses_hour or len(condition.stats) != 1 or achievement.starts or achievement.ends:
        return None
    thresholds = condition.thresholds()
    if len(thresholds) != 1 or thresholds[0].op not in (">=", ">"):
        return None
    stat, value = thresholds[0].stat, thresholds[0].value
    bound = value if thresholds[0].op == ">=" else value + 1
    # Checked, not assumed from the text: `not messages >= 5` has the same threshold and means the opposite.
    if condition.evaluate({stat: bound - 1}, None) or not condition.evaluate({stat: bound}, None):
        return None
    return stat, bound


class RuleBook:
    """A guild's achievements indexed by the stats their conditions read, so an activity only
    evaluates the rules it can affect. Milestones (one stat reaching a number) are kept sorted by
    that number: an activity evaluates only those at or below the member's new value, so a server
    with hundreds of milestones costs a member about the ones they could have reached, not all."""

    def __init__(self, achievements: Iterable[Achievement]) -> None:
        self.achievements: tuple[Achievement, ...] = tuple(achievements)
        self.by_id: dict[str, Achievement] = {a.id: a for a in self.achievements}
        by_stat: dict[str, list[Achievement]] = {}
        milestones: dict[str, list[tuple[int, int, Achievement]]] = {}
        for index, achievement in enumerate(self.achievements):
            bound = milestone_bound(achievement)
            if bound is not None:
                milestones.setdefault(bound[0], []).append((bound[1], index, achievement))
                continue
            for stat in sorted(achievement.condition.stats):
                by_stat.setdefault(stat, []).append(achievement)
        self._by_stat = {stat: tuple(rules) for stat, rules in by_stat.items()}
        self._milestones = {stat: tuple(a for _, _, a in sorted(rules)) for stat, rules in milestones.items()}
        self._milestone_bounds = {stat: [b for b, _, _ in sorted(rules)] for stat, rules in milestones.items()}
        self._hour_rules = tuple(a for a in self.achievements if a.condition.uses_hour)
        self._candidates: dict[tuple[frozenset[str], bool], tuple[Achievement, ...]] = {}

    def rules_reading(self, stat: str) -> tuple[Achievement, ...]:
        return self._by_stat.get(stat, ()) + self._milestones.get(stat, ())

    def candidates(
        self, changed: Iterable[str], include_hour_rules: bool, values: Mapping[str, int] | None = None
    ) -> Sequence[Achievement]:
        """Rules reading any of `changed` (and the time-of-day rules if asked), each once, in a stable
        order; with the member's `values`, only the milestones those values reach. The other rules
        are cached per set of changed stats: activities change few distinct sets."""
        key = (frozenset(changed), include_hour_rules)
        found = self._candidates.get(key)
        if found is None:
            found = self._candidates[key] = tuple(self._find_candidates(key[0], include_hour_rules))
        reached: list[Achievement] = []
        for stat in key[0]:
            rules = self._milestones.get(stat)
            if rules:
                if values is None:
                    reached += rules
                else:
                    reached += rules[:bisect_right(self._milestone_bounds[stat], values.get(stat, 0))]
        return found + tuple(reached) if reached else found

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
        for achievement in rulebook.candidates(pending, include_hour, values):
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
