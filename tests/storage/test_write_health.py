"""The database keeps track of failing writes, says so loudly in the log, and notices when they work again.

On both backends; writes are made to fail as a read-only database's do (see tests/support/backends.py's
set_read_only: SQLite's query_only, PostgreSQL's default_transaction_read_only).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bot.storage import Storage
from tests.support.backends import Backend, set_read_only


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[Storage]:
    opened = await backend.open()
    yield opened
    await opened.close()


make_read_only = set_read_only
READ_ONLY = r"readonly database|read-only transaction"


async def failed_write(storage: Storage, value: str = "x") -> None:
    with pytest.raises((sqlite3.OperationalError, asyncpg.ReadOnlySQLTransactionError)):
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
    assert re.search(READ_ONLY, health.last_error or "")


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
    assert "database writes are failing" in records[0][1] and re.search(READ_ONLY, records[0][1])
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
