"""PostgreSQL for the benchmarks: a database made for one run and dropped after it, and COPY bulk loading.

The server is BENCH_DATABASE_URL (an admin connection; the run makes its own database there), else
TEST_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/postgres."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_ADMIN_URL


@asynccontextmanager
async def temporary_database(label: str) -> AsyncIterator[str]:
    """The URL of a new, empty database, dropped when the block ends."""
    name = f"bench_{label}_{os.getpid()}"
    admin = await asyncpg.connect(admin_url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    try:
        yield urlunsplit(urlsplit(admin_url())._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(admin_url())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def copy_members(url: str, stats: list[tuple[object, ...]], unlocks: list[tuple[object, ...]]) -> None:
    """Bulk load member rows and unlocks with COPY. The ranking triggers are off meanwhile and the points
    histogram and tie blocks are rebuilt in one pass after, as migrations 0002/0003 build them."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE member_stats DISABLE TRIGGER USER")
            await conn.copy_records_to_table("member_stats", records=stats, columns=[
                "guild_id", "member_id", "messages", "reactions_given", "reactions_received", "logins", "streak",
                "best_streak", "points", "achievements", "last_active_date"])
            await conn.copy_records_to_table("unlocks", records=unlocks,
                                             columns=["guild_id", "member_id", "achievement_id", "unlocked_at"])
            await conn.execute("ALTER TABLE member_stats ENABLE TRIGGER USER")
            await conn.execute("DELETE FROM points_histogram")
            await conn.execute("DELETE FROM tie_blocks")
            await conn.execute(
                "INSERT INTO points_histogram (guild_id, points, members) SELECT guild_id, points, COUNT(*) "
                "FROM member_stats WHERE in_guild = 1 GROUP BY guild_id, points")
            await conn.execute(
                "INSERT INTO tie_blocks (guild_id, points, block, members) SELECT guild_id, points, "
                "member_id % 1024, COUNT(*) FROM member_stats WHERE in_guild = 1 "
                "GROUP BY guild_id, points, member_id % 1024")
        await conn.execute("VACUUM ANALYZE member_stats")
        await conn.execute("VACUUM ANALYZE unlocks")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
