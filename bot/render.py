"""Embeds the bot posts: announcements, profiles, leaderboards, achievement lists. Formatting only, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import discord

from bot.engine.achievements import Achievement, WindowState
from bot.engine.conditions import Progress
from bot.engine.leaderboard import medal, top_percent
from bot.engine.tiers import TierProgress, progress_bar

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
        return f"⌛ ends {discord.utils.format_dt(achievement.ends, 'R')}"
    if state is WindowState.EXPIRED:
        return "⌛ expired"
    return ""


def progress_text(progress: Progress) -> str:
    parts = ", ".join(f"{p.current}/{p.target} {p.stat.replace('_', ' ')}" for p in progress.parts if not p.done)
    bar = progress_bar(progress.fraction)
    return f"{bar} {int(progress.fraction * 100)}%" + (f" · {parts}" if parts else "")


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
