"""The database keeps track of failing writes, says so loudly in the log, and notices when they work again.

Writes are made to fail with `PRAGMA query_only = ON` on the bot's own connection: SQLite then refuses every
write with SQLITE_READONLY, the same error a read-only file, folder or mount gives, and this works as root
too (root ignores file permissions, so chmod cannot make a file read-only to the test).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage import Storage


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    opened = await Storage.open(tmp_path / "health.db")
    yield opened
    await opened.close()


async def make_read_only(storage: Storage, read_only: bool) -> None:
    await storage.db.conn.execute(f"PRAGMA query_only = {'ON' if read_only else 'OFF'}")


async def failed_write(storage: Storage, value: str = "x") -> None:
    with pytest.raises(sqlite3.OperationalError):
        await storage.meta.set("key", value)


async def test_writes_are_healthy_after_opening(storage: Storage) -> None:
    health = storage.db.write_health

    assert health.failing_since is None and health.failures == 0 and health.last_error is None


async def test_a_failed_write_is_counted_with_its_error_and_first_time(storage: Storage) -> None:
    await make_read_only(storage, True)

    await failed_write(storage)
    first = storage.db.write_health.failing_since
    await failed_write(storage)

    health = storage.db.write_health
    assert health.failures == 2
    assert health.failing_since == first is not None
    assert "readonly database" in (health.last_error or "")


async def test_the_next_successful_commit_clears_the_failure(storage: Storage) -> None:
    await make_read_only(storage, True)
    await failed_write(storage)
    await make_read_only(storage, False)

    await storage.meta.set("key", "y")

    assert storage.db.write_health.failing_since is None and storage.db.write_health.failures == 0
    assert await storage.meta.get("key") == "y"


async def test_an_error_of_the_callers_own_making_is_not_a_write_failure(storage: Storage) -> None:
    with pytest.raises(ValueError, match="changed my mind"):
        async with storage.db.transaction():
            raise ValueError("changed my mind")

    assert storage.db.write_health.failures == 0


async def test_failing_writes_log_one_error_then_one_info_when_they_work_again(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.storage.database")
    await make_read_only(storage, True)
    for _ in range(5):
        await failed_write(storage)
    await make_read_only(storage, False)
    await storage.meta.set("key", "y")

    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "bot.storage.database"]
    assert [level for level, _ in records] == ["ERROR", "INFO"]
    assert "database writes are failing" in records[0][1] and "readonly" in records[0][1]
    assert "succeed again after 5 failed" in records[1][1]


async def test_a_reminder_is_logged_when_the_reminder_interval_has_passed(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.storage.database")
    storage.db.reminder_interval = 0.0  # every failure is past the interval
    await make_read_only(storage, True)
    for _ in range(3):
        await failed_write(storage)

    messages = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(messages) == 3
    assert "still failing" in messages[2] and "3 failed attempts" in messages[2]
