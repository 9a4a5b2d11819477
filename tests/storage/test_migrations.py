"""Specification of the SQLite migration runner on real files: from zero, atomic failure, newer refused.
PostgreSQL's runner is specified in test_postgres.py."""

import sqlite3
from pathlib import Path

import pytest

from bot.storage.database import StorageError, default_migrations
from bot.storage.sqlite import SqliteDatabase

TABLES = {
    "guild_settings", "achievements", "member_stats", "custom_stats", "unlocks", "tiers", "audit_log", "outbox",
    "bot_meta",
}


def migration_files() -> list[Path]:
    return sorted((Path(__file__).parents[2] / "migrations").glob("[0-9][0-9][0-9][0-9]_*.sql"))


def tables_in(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        conn.close()
    return {name for (name,) in rows} - {"sqlite_sequence"}


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


async def test_a_new_database_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"

    db = await SqliteDatabase.open(path)
    await db.close()

    assert tables_in(path) >= TABLES
    assert user_version(path) == len(migration_files())


async def test_the_packaged_migrations_are_the_files_in_migrations() -> None:
    assert [name for _, name, _ in default_migrations()] == [p.name for p in migration_files()]


async def test_the_database_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "bot.db"

    db = await SqliteDatabase.open(path)
    await db.close()

    assert path.exists()


async def test_the_database_uses_wal_and_enforces_foreign_keys(tmp_path: Path) -> None:
    db = await SqliteDatabase.open(tmp_path / "bot.db")
    try:
        async with db.conn.execute("PRAGMA journal_mode") as cur:
            journal = await cur.fetchone()
        async with db.conn.execute("PRAGMA foreign_keys") as cur:
            foreign_keys = await cur.fetchone()
    finally:
        await db.close()

    assert journal is not None and journal[0] == "wal"
    assert foreign_keys is not None and foreign_keys[0] == 1


async def test_reopening_a_migrated_database_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    db = await SqliteDatabase.open(path)
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO bot_meta (key, value) VALUES ('kept', 'yes')")
    await db.close()

    again = await SqliteDatabase.open(path)
    try:
        version = await again.schema_version()
        async with again.conn.execute("SELECT value FROM bot_meta WHERE key = 'kept'") as cur:
            row = await cur.fetchone()
    finally:
        await again.close()

    assert version == len(migration_files())
    assert row is not None and row[0] == "yes"


async def test_migrate_on_an_up_to_date_database_applies_nothing(tmp_path: Path) -> None:
    db = await SqliteDatabase.open(tmp_path / "bot.db")
    try:
        before = await db.schema_version()
        after = await db.migrate(default_migrations())
    finally:
        await db.close()

    assert after == before


GOOD = (1, "0001_base.sql", "CREATE TABLE kept (id INTEGER PRIMARY KEY);")
BROKEN = (2, "0002_broken.sql", "CREATE TABLE half_done (id INTEGER);\nCREATE TABLE oops (id INTEGER,,);")


async def test_a_failing_migration_raises_storage_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"0002_broken\.sql"):
        await SqliteDatabase.open(tmp_path / "bot.db", migrations=[GOOD, BROKEN])


async def test_a_failing_migration_leaves_the_previous_schema_and_version(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"

    with pytest.raises(StorageError):
        await SqliteDatabase.open(path, migrations=[GOOD, BROKEN])

    assert tables_in(path) == {"kept"}
    assert user_version(path) == 1


async def test_a_failing_migration_on_an_existing_database_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    db = await SqliteDatabase.open(path, migrations=[GOOD])
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO kept (id) VALUES (7)")
    await db.close()

    with pytest.raises(StorageError):
        await SqliteDatabase.open(path, migrations=[GOOD, BROKEN])

    check = sqlite3.connect(path)
    try:
        assert check.execute("SELECT id FROM kept").fetchall() == [(7,)]
    finally:
        check.close()
    assert user_version(path) == 1


async def test_a_fixed_migration_applies_after_a_failed_attempt(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    with pytest.raises(StorageError):
        await SqliteDatabase.open(path, migrations=[GOOD, BROKEN])
    fixed = (2, "0002_broken.sql", "CREATE TABLE half_done (id INTEGER);")

    db = await SqliteDatabase.open(path, migrations=[GOOD, fixed])
    await db.close()

    assert tables_in(path) == {"kept", "half_done"}
    assert user_version(path) == 2


async def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(migration_files()) + 1}")
    conn.close()

    with pytest.raises(StorageError, match="newer"):
        await SqliteDatabase.open(path)


async def test_a_refused_newer_database_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()

    with pytest.raises(StorageError):
        await SqliteDatabase.open(path)

    assert user_version(path) == 99
    assert tables_in(path) == set()
