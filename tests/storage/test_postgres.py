"""What only the PostgreSQL backend has: its own migrations kept in step with SQLite's, processes starting at
once, DATABASE_URL's errors for the operator, and announcements claimed by one process at a time."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.storage import NewAnnouncement, Storage, StorageError
from bot.storage.database import default_migrations
from bot.storage.postgres import PostgresDatabase, to_dollar
from tests.support.backends import Backend, admin_url, database_url

TABLES = {
    "guild_settings", "achievements", "member_stats", "custom_stats", "unlocks", "tiers", "audit_log", "outbox",
    "bot_meta", "points_histogram", "tie_blocks", "achievement_jobs", "revocations", "schema_version",
}
GOOD = (1, "0001_base.sql", "CREATE TABLE kept (id INTEGER PRIMARY KEY);")
BROKEN = (2, "0002_broken.sql", "CREATE TABLE half_done (id INTEGER);\nCREATE TABLE oops (id INTEGER,,);")
NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)


async def query(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def test_both_backends_have_the_same_migration_numbers() -> None:
    sqlite = [(n, name) for n, name, _ in default_migrations("sqlite")]
    postgres = [(n, name) for n, name, _ in default_migrations("postgres")]

    assert [n for n, _ in postgres] == [n for n, _ in sqlite]
    assert [name for _, name in postgres] == [name for _, name in sqlite]


def test_placeholders_become_numbered_outside_literals_and_comments() -> None:
    sql = "SELECT '?', \"a?\" FROM t WHERE a = ? AND b = 'it''s ?' -- ?\n AND c = ? /* ? */"

    assert to_dollar(sql) == "SELECT '?', \"a?\" FROM t WHERE a = $1 AND b = 'it''s ?' -- ?\n AND c = $2 /* ? */"


async def test_a_new_database_is_migrated_with_each_version_recorded(postgres_backend: Backend) -> None:
    url = str(await postgres_backend.target("fresh", empty=True))

    storage = await Storage.open(url)
    await storage.close()

    tables = {r[0] for r in await query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    versions = [r[0] for r in await query(url, "SELECT version FROM schema_version ORDER BY version")]
    assert tables >= TABLES
    assert versions == [n for n, _, _ in default_migrations("postgres")]


async def test_several_processes_starting_at_once_apply_each_migration_once(postgres_backend: Backend) -> None:
    url = str(await postgres_backend.target("together", empty=True))

    opened = await asyncio.gather(*(Storage.open(url) for _ in range(5)))
    for storage in opened:
        await storage.close()

    versions = [r[0] for r in await query(url, "SELECT version FROM schema_version ORDER BY version")]
    assert versions == [n for n, _, _ in default_migrations("postgres")]


async def test_a_failing_migration_is_rolled_back_and_named(postgres_backend: Backend) -> None:
    url = str(await postgres_backend.target("broken", empty=True))

    with pytest.raises(StorageError, match=r"0002_broken\.sql"):
        await PostgresDatabase.open(url, [GOOD, BROKEN])

    tables = {r[0] for r in await query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"kept", "schema_version"}
    assert [r[0] for r in await query(url, "SELECT version FROM schema_version")] == [1]


async def test_a_database_newer_than_the_code_is_refused(postgres_backend: Backend) -> None:
    url = str(await postgres_backend.target("newer", empty=True))
    db = await PostgresDatabase.open(url, [GOOD, (2, "0002_more.sql", "CREATE TABLE more (id INTEGER);")])
    await db.close()

    with pytest.raises(StorageError, match="newer than this bot knows"):
        await PostgresDatabase.open(url, [GOOD])


async def test_names_stored_without_a_key_get_one_at_start(postgres_backend: Backend) -> None:
    url = str(await postgres_backend.target())
    await query(url, "INSERT INTO achievements (guild_id, achievement_id, name, description, points, condition, "
                     "created_at, updated_at) VALUES (1, 'ecole', 'École', 'd', 10, 'messages >= 1', 'x', 'x')")

    storage = await Storage.open(url)
    try:
        assert await storage.achievements.name_taken(1, "ÉCOLE")
    finally:
        await storage.close()


# --- DATABASE_URL's errors: one line each, saying what to fix ----------------------------------------------


def one_line(error: pytest.ExceptionInfo[StorageError]) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("url, expected", [
    ("mysql://user@127.0.0.1/db", "must start with postgresql://"),
    ("postgresql://user@127.0.0.1:99999/db", "not a valid URL"),
    ("postgresql:///db", "names no server"),
    ("postgresql://user@127.0.0.1:5432/", "names no database"),
])
async def test_a_malformed_database_url_is_refused(url: str, expected: str) -> None:
    with pytest.raises(StorageError) as error:
        await Storage.open_url(url)

    assert expected in one_line(error)


async def test_an_unreachable_server_is_named() -> None:
    with pytest.raises(StorageError) as error:
        await Storage.open_url("postgresql://postgres@127.0.0.1:1/achievements")

    assert re.search(r"cannot reach the PostgreSQL server 127\.0\.0\.1:1 .*check that it runs", one_line(error))


async def test_wrong_credentials_are_named(postgres_backend: Backend) -> None:
    parts = urlsplit(admin_url())
    url = urlunsplit(parts._replace(netloc=f"no_such_user:secret@{parts.hostname}:{parts.port or 5432}"))

    with pytest.raises(StorageError) as error:
        await Storage.open_url(url)

    message = one_line(error)
    assert "refused user 'no_such_user'" in message and "secret" not in message


async def test_a_missing_database_is_named(postgres_backend: Backend) -> None:
    with pytest.raises(StorageError) as error:
        await Storage.open_url(database_url("no_such_database_here"))

    assert "has no database 'no_such_database_here'" in one_line(error)


async def test_a_path_still_opens_sqlite(tmp_path: Path) -> None:
    storage = await Storage.open_configured(None, tmp_path / "bot.db")
    try:
        assert storage.db.dialect.name == "sqlite"
    finally:
        await storage.close()


# --- Several processes, one outbox ---------------------------------------------------------------------------


async def test_announcements_claimed_by_two_processes_at_once_go_into_one_post_each(
    postgres_backend: Backend,
) -> None:
    first = await postgres_backend.open()
    second = await postgres_backend.open()  # another process's pool on the same database
    try:
        async with first.db.transaction() as tx:
            await first.outbox.add(tx, [NewAnnouncement(1, m, "unlock", None, {"achievement_id": "a"})
                                        for m in range(200)], NOW)
        ids = [item.id for item in await first.outbox.due(NOW)]

        for _ in range(5):
            await asyncio.gather(
                first.outbox.claim([[i] for i in ids]), second.outbox.claim([[i] for i in reversed(ids)])
            )
            ids = [item.id for item in await first.outbox.due(NOW) if item.post_key is None]
            if not ids:
                break

        claimed: dict[int, str] = {}
        for item in await first.outbox.due(NOW):
            assert item.post_key is not None
            claimed[item.id] = item.post_key
        assert len(claimed) == 200
        assert len(set(claimed.values())) == 200  # never two posts for one announcement, nor one for two
    finally:
        await first.close()
        await second.close()
