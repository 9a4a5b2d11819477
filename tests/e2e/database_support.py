"""Putting the bot's database under stress in end-to-end tests: another writer holding it, writes refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.app import AchievementsBot


@asynccontextmanager
async def database_busy(bot: AchievementsBot) -> AsyncIterator[None]:
    """Another writer (a long transaction of another guild) holds the database's write lock until the block ends."""
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with bot.storage.db.transaction():
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    try:
        yield
    finally:
        release.set()
        await holder


async def set_read_only(bot: AchievementsBot, read_only: bool) -> None:
    """Make SQLite refuse (or accept again) every write on the bot's connection, as a read-only file would.

    `PRAGMA query_only = ON` gives the same SQLITE_READONLY error as a file, folder or mount made read-only
    after start, while reads go on; unlike chmod it also stops root, which the tests may run as."""
    pragma = f"PRAGMA query_only = {'ON' if read_only else 'OFF'}"
    await bot.storage.db.conn.execute(pragma)
    if bot.storage.db.inline is not None:  # the recorder's group commit writes on this one
        bot.storage.db.inline.execute(pragma)
