"""The synchronous changes to a member's state: the only code that reads and then changes it.

Every function here is a plain `def`: it cannot await, so nothing else can run between reading a member's
state and changing it, and two concurrent activities of one member can never earn an achievement twice. The
recorder calls them only with the states `_ready()` returned, after its last await.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.engine.achievements import Achievement
from bot.engine.evaluator import Evaluation, evaluate, evaluate_all
from bot.engine.stats import Activity, ActivityKind, MemberStats, apply_activity, local_date_and_hour
from bot.engine.tiers import Tier, tier_change, tier_for, tier_progress
from bot.recording.state import GuildState, MemberState
from bot.storage import GuildSettings, NewAnnouncement


def passes_anti_spam(settings: GuildSettings, last_counted: datetime | None, at: datetime, content: str | None) -> bool:
    """Whether a message counts under the guild's anti-spam rules (off by default)."""
    cooldown = timedelta(seconds=settings.anti_spam_cooldown)
    if settings.anti_spam_cooldown and last_counted is not None and at - last_counted < cooldown:
        return False
    # Without the message-content intent the content is empty: the length rule cannot apply then.
    return not (settings.anti_spam_min_length and content and len(content.strip()) < settings.anti_spam_min_length)


def _settle(
    state: MemberState, revoked: set[str] | None, evaluate_with: Callable[[set[str]], Evaluation]
) -> Evaluation:
    """Run an evaluation that must not unlock what a moderator revoked; its unlocks join `unlocked`."""
    if not revoked:
        return evaluate_with(state.unlocked)
    evaluation = evaluate_with(state.unlocked | revoked)
    state.unlocked.update(a.id for a in evaluation.unlocked)
    return evaluation


def apply(guild: GuildState, state: MemberState, activity: Activity, content: str | None) -> Evaluation | None:
    """Count `activity` for its member and decide what it unlocks; None when anti-spam does not count it."""
    if activity.kind is ActivityKind.MESSAGE:
        if not passes_anti_spam(guild.settings, state.last_counted_message, activity.at, content):
            return None
        state.last_counted_message = activity.at
    day, hour = local_date_and_hour(activity.at, guild.tz)
    changed = apply_activity(state.stats, activity, day)
    return _settle(state, guild.revoked.get(activity.member_id), lambda unlocked: evaluate(
        state.stats, unlocked, guild.rulebook, changed, activity.at, hour if activity.is_active else None,
        guild.tiers))


@dataclass(slots=True)
class Grant:
    evaluation: Evaluation  # the granted achievement first, then what its points unlocked in turn
    ended_revoke: bool  # the member had it revoked: the grant ends that revoke


def grant(guild: GuildState, state: MemberState, member_id: int, achievement_id: str, now: datetime) -> Grant | None:
    """A moderator gives an achievement, whatever its condition; None if unknown or already held."""
    achievement = guild.rulebook.by_id.get(achievement_id)
    if achievement is None or achievement_id in state.unlocked:
        return None
    old_points = state.stats.get("points")
    revoked = guild.revoked.get(member_id)
    ended_revoke = bool(revoked and achievement_id in revoked)
    if revoked and ended_revoke:
        revoked.discard(achievement_id)
    state.unlocked.add(achievement_id)
    state.stats.add("points", achievement.points)
    state.stats.add("achievements", 1)
    cascade = _settle(state, revoked, lambda unlocked: evaluate(
        state.stats, unlocked, guild.rulebook, {"points", "achievements"}, now, None, guild.tiers))
    evaluation = Evaluation([achievement, *cascade.unlocked])
    evaluation.tier_reached = tier_change(old_points, state.stats.get("points"), guild.tiers)
    return Grant(evaluation, ended_revoke)


def revoke(guild: GuildState, state: MemberState, member_id: int, achievement_id: str, points: int) -> bool:
    """Take an unlock back, with the points it gave; False if the member did not have it."""
    if achievement_id not in state.unlocked:
        return False
    state.unlocked.discard(achievement_id)
    guild.revoked.setdefault(member_id, set()).add(achievement_id)
    state.stats.values["points"] = max(0, state.stats.get("points") - points)
    state.stats.values["achievements"] = max(0, state.stats.get("achievements") - 1)
    return True


def reevaluate(guild: GuildState, state: MemberState, member_id: int, now: datetime,
               achievements: Sequence[Achievement]) -> Evaluation:
    """Retroactive evaluation of `achievements` for one member."""
    return _settle(state, guild.revoked.get(member_id), lambda unlocked: evaluate_all(
        state.stats, unlocked, guild.rulebook, now, guild.tiers, achievements))


def announcements_for(
    guild_id: int, member_id: int, stats: MemberStats, tiers: Sequence[Tier], evaluation: Evaluation,
    channel_id: int | None,
) -> list[NewAnnouncement]:
    total = stats.get("points")
    progress = tier_progress(total, tiers)
    common: dict[str, Any] = {
        "total_points": total,
        "tier": {"name": progress.current.name, "badge": progress.current.badge},
        "next_tier": (
            {"name": progress.next.name, "badge": progress.next.badge, "points": progress.next.points}
            if progress.next else None
        ),
        "tier_percent": progress.percent,
    }
    items = [
        NewAnnouncement(guild_id, member_id, "unlock", channel_id, {
            **common,
            "achievement_id": a.id, "name": a.name, "description": a.description, "points": a.points,
            "hidden": a.hidden, "role_id": a.role_id,
        })
        for a in evaluation.unlocked
    ]
    if evaluation.tier_reached is not None:
        old = tier_for(total - evaluation.points_gained, tiers)
        items.append(NewAnnouncement(guild_id, member_id, "tier", channel_id, {
            **common,
            "old_tier": {"name": old.name, "badge": old.badge},
            "new_tier": {"name": evaluation.tier_reached.name, "badge": evaluation.tier_reached.badge,
                         "role_id": evaluation.tier_reached.role_id},
        }))
    return items
