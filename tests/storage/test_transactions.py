"""A task cancelled in the middle of a transaction never leaves the connection inside it."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from bot.clock import FakeClock
from bot.engine.stats import Activity, ActivityKind
from bot.recording import ActivityRecorder
from tests.support.backends import Backend


async def test_writes_cancelled_at_any_point_leave_the_database_usable(backend: Backend) -> None:
    storage = await backend.open()
    rng = random.Random(5)
    for attempt in range(60):
        task = asyncio.create_task(storage.meta.set("key", str(attempt)))
        for _ in range(rng.randint(0, 6)):
            await asyncio.sleep(0)  # cancel before, during or after BEGIN, the write or COMMIT
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert await storage.meta.get("probe") is None  # a read after each cancel still works
    await storage.meta.set("final", "written")
    assert await storage.meta.get("final") == "written"
    await storage.close()


async def test_a_flush_cancelled_mid_write_neither_loses_nor_repeats_its_batch(backend: Backend) -> None:
    rng = random.Random(9)
    for attempt in range(15):
        storage = await backend.open(f"flush-{attempt}")
        clock = FakeClock(datetime(2026, 1, 5, 12, tzinfo=UTC))
        recorder = ActivityRecorder(storage, clock, flush_interval=3600)
        await recorder.record(Activity(1, 7, ActivityKind.MESSAGE, clock.now(), channel_id=5))
        flush = asyncio.create_task(recorder.flush())
        for _ in range(rng.randint(0, 8)):
            await asyncio.sleep(0)
        flush.cancel()
        await asyncio.gather(flush, return_exceptions=True)
        await recorder.close()  # writes whatever the cancelled flush did not
        stats, unlocked = await storage.members.load(1, 7)
        assert stats.get("messages") == 1 and unlocked == {"first-step"}
        assert len(await storage.outbox.due(datetime(2100, 1, 1, tzinfo=UTC))) == 1
        await storage.close()
