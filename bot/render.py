"""Embeds the bot posts: announcements, profiles, leaderboards, achievement lists. Formatting only, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import discord

from bot.engine.achievements import Achievement, WindowState
from bot.engine.conditions import Progress
from bot.engine.leaderboard import medal, top_percent
from bot.engine.tiers import TierProgress, progress_bar

if TYPE_CHECKING:
    from bot.management import AchievementPreview
    from bot.profiles import AchievementStatus, LeaderboardPage, Profile

GOLD = discord.Colour.gold()
BLURPLE = discord.Colour.blurple()
HIDDEN_NAME = "??? Hidden achievement"
EMBED_DESCRIPTION_LIMIT = 4096


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mention(member_id: int) -> str:
    return f"<@{member_id}>"


def rarity_text(holders: int, members: int) -> str:
    if members <= 0:
        return "First to earn it!"
    percent = holders / members * 100
    if holders <= 1:
        return "First to earn it!" if members > 1 else "Only member with it"
    shown = f"{percent:.1f}" if percent < 1 else f"{round(percent)}"
    return f"{shown}% of members have this"


def tier_line(payload: dict[str, Any]) -> str:
    tier = payload["tier"]
    nxt = payload.get("next_tier")
    if not nxt:
        return f"{tier['badge']} {tier['name']}: top tier reached"
    percent = int(payload.get("tier_percent", 0))
    return (
        f"{tier['badge']} {tier['name']} → {nxt['badge']} {nxt['name']}\n"
        f"{progress_bar(percent / 100)} {percent}% ({payload['total_points']}/{nxt['points']} pts)"
    )


def unlock_embed(payload: dict[str, Any], holders: int, members: int) -> discord.Embed:
    title = "🔓 Hidden achievement revealed!" if payload.get("hidden") else "🏆 Achievement unlocked!"
    embed = discord.Embed(title=title, colour=GOLD)
    embed.add_field(name=clip(str(payload["name"]), 256), value=clip(str(payload["description"]) or "—", 1024),
                    inline=False)
    embed.add_field(name="Points", value=f"+{payload['points']} (total {payload['total_points']})")
    embed.add_field(name="Rarity", value=rarity_text(holders, members))
    embed.add_field(name="Tier", value=tier_line(payload), inline=False)
    return embed


def tier_embed(payload: dict[str, Any]) -> discord.Embed:
    old, new = payload.get("old_tier"), payload["new_tier"]
    before = f"{old['badge']} {old['name']}" if old else "—"
    embed = discord.Embed(
        title="⬆️ New tier reached!",
        description=f"{before} → **{new['badge']} {new['name']}**",
        colour=GOLD,
    )
    embed.add_field(name="Points", value=str(payload["total_points"]))
    if payload.get("next_tier"):
        embed.add_field(name="Next", value=tier_line(payload), inline=False)
    return embed


@dataclass(frozen=True, slots=True)
class DigestLine:
    member_id: int
    text: str


def digest_embed(lines: Sequence[DigestLine], total: int) -> discord.Embed:
    shown: list[str] = []
    size = 0
    for line in lines:
        entry = f"{mention(line.member_id)} {line.text}"
        if size + len(entry) + 1 > EMBED_DESCRIPTION_LIMIT - 40:
            break
        shown.append(entry)
        size += len(entry) + 1
    more = total - len(shown)
    description = "\n".join(shown) + (f"\n…and {more} more" if more > 0 else "")
    return discord.Embed(title=f"🏆 {total} new achievements and tiers", description=description, colour=GOLD)


def window_text(achievement: Achievement, now: datetime) -> str:
    state = achievement.window(now)
    if state is WindowState.UPCOMING and achievement.starts:
        return f"⏳ upcoming: opens {discord.utils.format_dt(achievement.starts, 'D')}"
    if state is WindowState.OPEN and achievement.ends:
        return f"⌛ ends on {discord.utils.format_dt(achievement.ends, 'f')}"
    if state is WindowState.EXPIRED:
        return "⌛ expired"
    return ""


MAX_PROGRESS_PARTS = 3  # a condition may have 32 thresholds; a line shows the first few


def progress_text(progress: Progress) -> str:
    pending = [p for p in progress.parts if not p.done]
    parts = ", ".join(f"{p.current}/{p.target} {p.stat.replace('_', ' ')}" for p in pending[:MAX_PROGRESS_PARTS])
    if len(pending) > MAX_PROGRESS_PARTS:
        parts += f", +{len(pending) - MAX_PROGRESS_PARTS} more"
    bar = progress_bar(progress.fraction)
    return f"{bar} {int(progress.fraction * 100)}%" + (f" · {parts}" if parts else "")


def plural(count: int, noun: str) -> str:
    """`1 member`, `2 members`, `1,200 members`."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def tier_progress_text(progress: TierProgress, points: int) -> str:
    if progress.next is None:
        return f"{progress_bar(1.0)} top tier"
    return (
        f"{progress_bar(progress.percent / 100)} {progress.percent}% to {progress.next.badge} {progress.next.name} "
        f"({points}/{progress.next.points})"
    )


def rank_text(rank: int | None, members: int) -> str:
    if rank is None:
        return "Unranked"
    return f"{medal(rank)} #{rank} of {members} · {top_percent(rank, members)}".strip()


def profile_embed(profile: Profile, display_name: str, avatar_url: str | None) -> discord.Embed:
    tier = profile.tier.current
    embed = discord.Embed(title=clip(f"{tier.badge} {display_name}", 256), colour=BLURPLE,
                          description=f"**{tier.name}** · {profile.points:,} points")
    if avatar_url:
        embed.set_thumbnail(url=avatar_url)
    embed.add_field(name="Rank", value=rank_text(profile.rank, profile.members))
    embed.add_field(name="Streak", value=f"🔥 {plural(profile.streak, 'day')} (best {profile.best_streak})")
    embed.add_field(name="Achievements", value=f"{profile.unlocked_count}/{profile.total_achievements}")
    embed.add_field(name="Next tier", value=tier_progress_text(profile.tier, profile.points), inline=False)
    if profile.nearest:
        embed.add_field(name="Closest to unlocking", inline=False, value=clip("\n".join(
            f"**{clip(s.achievement.name, 80)}**: {progress_text(s.progress)}" for s in profile.nearest if s.progress
        ), 1024))
    if profile.latest:
        embed.add_field(name="Latest unlocks", inline=False, value=clip("\n".join(
            f"🏆 **{clip(s.achievement.name, 80)}** · {discord.utils.format_dt(s.unlocked_at, 'R')}"
            for s in profile.latest if s.unlocked_at
        ), 1024))
    if profile.rank is None and not profile.stats.values:
        embed.set_footer(text="No activity yet: send a message to get on the board.")
    return embed


def leaderboard_embed(page: LeaderboardPage, guild_name: str, caller_id: int) -> discord.Embed:
    embed = discord.Embed(title=clip(f"🏆 Leaderboard · {guild_name}", 256), colour=GOLD)
    if not page.rows:
        embed.description = "Nobody has any points yet. Be the first: say hi!"
        return embed
    lines = []
    for row in page.rows:
        badge = medal(row.rank) or f"`#{row.rank}`"
        me = " ← you" if row.member_id == caller_id else ""
        lines.append(f"{badge} {mention(row.member_id)} · **{row.points:,}** pts{me}")
    if page.caller is not None and all(r.member_id != caller_id for r in page.rows):
        lines.append("…")
        lines.append(f"`#{page.caller.rank}` {mention(caller_id)} · **{page.caller.points:,}** pts ← you")
    embed.description = "\n".join(lines)
    embed.set_footer(text=f"Page {page.page + 1}/{page.pages} · {plural(page.members, 'member')} ranked")
    return embed


def achievement_line(status: AchievementStatus, now: datetime) -> str:
    a = status.achievement
    window = window_text(a, now)
    suffix = f" · {window}" if window else ""
    if status.unlocked_at is not None:
        return (f"✅ **{clip(a.name, 80)}** ({a.points} pts) · unlocked "
                f"{discord.utils.format_dt(status.unlocked_at, 'd')}{suffix}")
    if a.hidden:
        return f"🔒 {HIDDEN_NAME}"
    if a.condition.uses_hour and not (status.progress and status.progress.parts):
        # Only the time of the member's next activity decides it: a bar would say nothing.
        bar = "🕐 a time of day challenge: be active at the right hour"
    else:
        bar = progress_text(status.progress) if status.progress else ""
    return f"🔒 **{clip(a.name, 80)}** ({a.points} pts): {clip(a.description, 120)}\n  {clip(bar, 200)}{suffix}"


def achievements_embed(statuses: Sequence[AchievementStatus], page: int, per_page: int, display_name: str,
                       now: datetime) -> tuple[discord.Embed, int]:
    # Hidden locked achievements are counted together at the end, never named or listed apart.
    visible = [s for s in statuses if s.unlocked_at is not None or not s.achievement.hidden]
    hidden_locked = len(statuses) - len(visible)
    unlocked = sum(1 for s in statuses if s.unlocked_at)
    pages = max(1, -(-len(visible) // per_page))
    page = max(0, min(page, pages - 1))
    chunk = visible[page * per_page:(page + 1) * per_page]
    body = "\n".join(achievement_line(s, now) for s in chunk) or "No achievements yet."
    if hidden_locked and page == pages - 1:
        body += f"\n🔒 {HIDDEN_NAME} ×{hidden_locked}"
    embed = discord.Embed(title=clip(f"Achievements · {display_name}", 256), colour=BLURPLE,
                          description=clip(body, EMBED_DESCRIPTION_LIMIT))
    embed.set_footer(text=f"{unlocked}/{len(statuses)} unlocked · page {page + 1}/{pages}")
    return embed, pages


def preview_embed(preview: AchievementPreview, verb: str) -> discord.Embed:
    a = preview.achievement
    embed = discord.Embed(title=clip(f"{verb}: {a.name}", 256), description=clip(a.description, 1024), colour=BLURPLE)
    embed.add_field(name="Id", value=f"`{a.id}`")
    embed.add_field(name="Points", value=str(a.points))
    embed.add_field(name="Kind", value=a.kind.value + (" · hidden" if a.hidden else ""))
    embed.add_field(name="Condition", value=clip(f"`{a.condition.text}`", 1024), inline=False)
    if a.starts or a.ends:
        start = discord.utils.format_dt(a.starts, "f") if a.starts else "now"
        end = discord.utils.format_dt(a.ends, "f") if a.ends else "no end"
        embed.add_field(name="Window", value=f"{start} → {end}", inline=False)
    if a.role_id:
        embed.add_field(name="Reward role", value=f"<@&{a.role_id}>")
    embed.add_field(
        name="Already met by", inline=False,
        value=f"{preview.meeting} of {preview.members} members (they get it now, in the background)",
    )
    if preview.warnings:
        embed.add_field(name="Check this", value=clip("\n".join(preview.warnings), 1024), inline=False)
        embed.colour = discord.Colour.orange()
    return embed
