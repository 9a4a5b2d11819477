"""Synthetic guilds for the benchmarks: N members with plausible stats, points and unlocks, written fast."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from datetime import date, timedelta
from pathlib import Path

from bot.clock import FakeClock
from bot.engine.evaluator import RuleBook, evaluate_all
from bot.engine.stats import MemberStats
from bot.engine.tiers import DEFAULT_TIERS
from bot.services import build_services
from bot.storage import Storage

GUILD_ID = 424242
TODAY = date(2026, 3, 10)


def member_stats(rng: random.Random) -> MemberStats:
    """A heavy-tailed community: most members post a little, a few post a lot."""
    messages = int(rng.paretovariate(1.2)) - 1
    active_days = min(365, 1 + int(messages ** 0.6 * rng.random()))
    streak = rng.choice((0, 0, 0, 1, 1, 2, 3, 5, 8, 13)) if rng.random() < 0.5 else 0
    last = TODAY - timedelta(days=rng.choice((0, 0, 1, 1, 2, 5, 30)))
    values = {
        "messages": messages,
        "reactions_given": int(messages * rng.random() * 0.8),
        "reactions_received": int(messages * rng.random() * 0.6),
        "logins": active_days,
        "streak": min(streak, active_days),
        "best_streak": max(min(streak, active_days), min(active_days, int(rng.random() * 10))),
    }
    return MemberStats({k: v for k, v in values.items() if v}, last)


async def build(path: Path | str, members: int, *, seed: int = 7) -> float:
    """Create a database with one guild of `members` members; returns seconds taken. `path` is a SQLite
    file, or the URL of an empty PostgreSQL database (loaded with COPY)."""
    started = time.perf_counter()
    storage = await Storage.open(path)
    services = build_services(storage, FakeClock())
    guild = await services.recorder.guild(GUILD_ID)  # the default pack and tiers, as in production
    await services.close()
    rulebook = RuleBook(guild.rulebook.achievements)
    clock = FakeClock()
    if isinstance(path, str):
        from bench._pg import copy_members

        stats, unlocks = await asyncio.to_thread(_rows, members, seed, rulebook, clock)
        await copy_members(path, stats, unlocks)
    else:
        await asyncio.to_thread(_write, path, members, seed, rulebook, clock)
    return time.perf_counter() - started


def _rows(
    members: int, seed: int, rulebook: RuleBook, clock: FakeClock
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The same members and unlocks `_write` stores, as rows for COPY."""
    rng = random.Random(seed)
    now = clock.now().isoformat()
    stats_rows: list[tuple[object, ...]] = []
    unlock_rows: list[tuple[object, ...]] = []
    for member_id in range(1, members + 1):
        stats = member_stats(rng)
        unlocked: set[str] = set()
        evaluate_all(stats, unlocked, rulebook, clock.now(), DEFAULT_TIERS)
        v = stats.values
        stats_rows.append((
            GUILD_ID, member_id, v.get("messages", 0), v.get("reactions_given", 0), v.get("reactions_received", 0),
            v.get("logins", 0), v.get("streak", 0), v.get("best_streak", 0), v.get("points", 0),
            v.get("achievements", 0), stats.last_active.isoformat() if stats.last_active else None,
        ))
        unlock_rows.extend((GUILD_ID, member_id, a, now) for a in unlocked)
    return stats_rows, unlock_rows


def _write(path: Path, members: int, seed: int, rulebook: RuleBook, clock: FakeClock) -> None:
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    now = clock.now().isoformat()
    batch_stats: list[tuple[object, ...]] = []
    batch_unlocks: list[tuple[object, ...]] = []

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO member_stats (guild_id, member_id, messages, reactions_given, reactions_received, logins,"
            " streak, best_streak, points, achievements, last_active_date) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            batch_stats,
        )
        conn.executemany(
            "INSERT INTO unlocks (guild_id, member_id, achievement_id, unlocked_at) VALUES (?,?,?,?)", batch_unlocks
        )
        conn.execute("COMMIT")
        batch_stats.clear()
        batch_unlocks.clear()

    for member_id in range(1, members + 1):
        stats = member_stats(rng)
        unlocked: set[str] = set()
        evaluate_all(stats, unlocked, rulebook, clock.now(), DEFAULT_TIERS)
        v = stats.values
        batch_stats.append((
            GUILD_ID, member_id, v.get("messages", 0), v.get("reactions_given", 0), v.get("reactions_received", 0),
            v.get("logins", 0), v.get("streak", 0), v.get("best_streak", 0), v.get("points", 0),
            v.get("achievements", 0), stats.last_active.isoformat() if stats.last_active else None,
        ))
        batch_unlocks.extend((GUILD_ID, member_id, a, now) for a in unlocked)
        if len(batch_stats) >= 50_000:
            flush()
    flush()
    conn.execute("ANALYZE")
    conn.close()
