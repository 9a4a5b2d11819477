"""Target 2: activities recorded, evaluated and persisted per second, without Discord.

Baseline, in the same run: raw batched SQLite upserts of the same member rows (what SQLite alone does
for the same writes). Usage: python -m bench.engine_ingest [--members 10000] [--events 200000]
[--achievements 20] (the default pack is 20; more are added as milestones over the four counters).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench._util import machine, verdict
from bot.clock import FakeClock
from bot.engine.achievements import Achievement
from bot.engine.conditions import parse_condition
from bot.engine.stats import Activity, ActivityKind
from bot.recorder import ActivityRecorder
from bot.storage import Storage

GUILD = 1
TARGET = 100_000


@dataclass
class Result:
    record_per_s: float
    record_many_per_s: float
    baseline_per_s: float
    stored_messages: int
    events: int


async def add_milestones(storage: Storage, count: int, now: object) -> None:
    """`count` more achievements, the way a busy server grows them: thresholds over the counters."""
    stats = ("messages", "reactions_given", "reactions_received", "logins")
    async with storage.db.transaction() as conn:
        for n in range(count):
            condition = parse_condition(f"{stats[n % 4]} >= {50 + 37 * n}")
            await storage.achievements.save(conn, GUILD, Achievement(
                f"milestone-{n}", f"Milestone {n}", "Keep going.", 5, condition), now)  # type: ignore[arg-type]


async def run(members: int, events: int, achievements: int = 20) -> Result:
    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    clock = FakeClock()
    storage = await Storage.open(folder / "ingest.db")
    recorder = ActivityRecorder(storage, clock, flush_interval=0.5)
    recorder.start()
    await recorder.guild(GUILD)
    now = clock.now()
    if achievements > 20:
        await add_milestones(storage, achievements - 20, now)
        await recorder.reload_guild(GUILD)

    def activities(count: int) -> list[Activity]:
        return [Activity(GUILD, 1 + i % members, ActivityKind.MESSAGE, now, channel_id=9) for i in range(count)]

    # Every member's first activity (a cold load and First Step), then timed passes over cached members.
    await recorder.record_many(activities(members))
    await recorder.flush()
    batch = activities(events)
    started = time.perf_counter()
    for activity in batch:
        await recorder.record(activity)
    await recorder.flush()
    record_rate = events / (time.perf_counter() - started)

    started = time.perf_counter()
    for start in range(0, events, 10_000):
        await recorder.record_many(batch[start:start + 10_000])
    await recorder.flush()
    many_rate = events / (time.perf_counter() - started)
    await recorder.close()

    async with storage.db.conn.execute("SELECT SUM(messages) FROM member_stats WHERE guild_id = ?", (GUILD,)) as cur:
        row = await cur.fetchone()
    stored = int(row[0]) if row and row[0] else 0

    # Baseline: the same number of member-row upserts, batched the way the recorder batches them.
    rows = [(GUILD, 1 + i % members) for i in range(events)]
    started = time.perf_counter()
    for start in range(0, events, 20_000):
        async with storage.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO member_stats (guild_id, member_id, messages) VALUES (?, ?, 1) "
                "ON CONFLICT (guild_id, member_id) DO UPDATE SET messages = messages + 1",
                rows[start:start + 20_000],
            )
    baseline_rate = events / (time.perf_counter() - started)
    await storage.close()
    return Result(record_rate, many_rate, baseline_rate, stored, events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--achievements", type=int, default=20, help="achievements in the guild (20: the pack)")
    args = parser.parse_args()
    result = asyncio.run(run(args.members, args.events, args.achievements))
    expected = args.members + 2 * args.events
    print(f"engine ingest · {args.members:,} members · {args.events:,} events · "
          f"{args.achievements:,} achievements · {machine()}")
    print(f"  record() one by one : {result.record_per_s:>10,.0f} activities/s  "
          f"ratio to SQLite {result.record_per_s / result.baseline_per_s:.2f}  "
          f"{verdict(result.record_per_s >= TARGET)}")
    print(f"  record_many() batch : {result.record_many_per_s:>10,.0f} activities/s  "
          f"ratio to SQLite {result.record_many_per_s / result.baseline_per_s:.2f}  "
          f"{verdict(result.record_many_per_s >= TARGET)}")
    print(f"  baseline SQLite upserts: {result.baseline_per_s:>7,.0f} rows/s")
    print(f"  stored messages {result.stored_messages:,} (expected {expected:,}): "
          f"{'ok' if result.stored_messages == expected else 'WRONG'}")


if __name__ == "__main__":
    main()
