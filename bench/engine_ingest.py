"""Target 2: activities recorded, evaluated and persisted per second, without Discord.

Baseline, in the same run: raw batched upserts of the same member rows (what the database alone does
for the same writes). Usage: python -m bench.engine_ingest [--members 10000] [--events 200000]
[--achievements 20] [--backend postgres] (the default pack is 20; more are added as milestones over the four
counters). With --backend postgres the run makes and drops its own database (bench/_pg.py) and also runs
SQLite, for the ratio of the two.
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
from bot.services import build_services
from bot.storage import Storage

GUILD = 1
TARGET = 100_000
POSTGRES_TARGET = 50_000


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
    async with storage.db.transaction() as tx:
        for n in range(count):
            condition = parse_condition(f"{stats[n % 4]} >= {50 + 37 * n}")
            await storage.achievements.save(tx, GUILD, Achievement(
                f"milestone-{n}", f"Milestone {n}", "Keep going.", 5, condition), now)  # type: ignore[arg-type]


async def run(members: int, events: int, achievements: int = 20, backend: str = "sqlite") -> Result:
    if backend == "postgres":
        from bench._pg import temporary_database

        async with temporary_database("ingest") as url:
            return await run_at(url, members, events, achievements)
    return await run_at(Path(tempfile.mkdtemp(prefix="bench-ingest-")) / "ingest.db", members, events, achievements)


async def run_at(target: Path | str, members: int, events: int, achievements: int) -> Result:
    clock = FakeClock()
    services = build_services(await Storage.open(target), clock, flush_interval=0.5)
    storage, recorder = services.storage, services.recorder
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

    stored = int(await storage.db.fetch_value("SELECT SUM(messages) FROM member_stats WHERE guild_id = ?", GUILD) or 0)

    # Baseline: the same number of member-row upserts, batched the way the recorder batches them.
    rows = [(GUILD, 1 + i % members) for i in range(events)]
    started = time.perf_counter()
    for start in range(0, events, 20_000):
        async with storage.db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO member_stats AS m (guild_id, member_id, messages) VALUES (?, ?, 1) "
                "ON CONFLICT (guild_id, member_id) DO UPDATE SET messages = m.messages + 1",
                rows[start:start + 20_000],
            )
    baseline_rate = events / (time.perf_counter() - started)
    await services.close()
    return Result(record_rate, many_rate, baseline_rate, stored, events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--achievements", type=int, default=20, help="achievements in the guild (20: the pack)")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    result = asyncio.run(run(args.members, args.events, args.achievements, args.backend))
    expected = args.members + 2 * args.events
    print(f"engine ingest · {args.backend} · {args.members:,} members · {args.events:,} events · "
          f"{args.achievements:,} achievements · {machine()}")
    if args.backend == "postgres":
        sqlite = asyncio.run(run(args.members, args.events, args.achievements))
        print(f"  PostgreSQL / SQLite, same run: record() {result.record_per_s / sqlite.record_per_s:.2f}  "
              f"record_many() {result.record_many_per_s / sqlite.record_many_per_s:.2f}  "
              f"(SQLite: {sqlite.record_per_s:,.0f} and {sqlite.record_many_per_s:,.0f} activities/s)  "
              f"target {POSTGRES_TARGET:,}/s: {verdict(result.record_many_per_s >= POSTGRES_TARGET)}")
    print(f"  record() one by one : {result.record_per_s:>10,.0f} activities/s  "
          f"ratio to raw upserts {result.record_per_s / result.baseline_per_s:.2f}  "
          f"{verdict(result.record_per_s >= TARGET)}")
    print(f"  record_many() batch : {result.record_many_per_s:>10,.0f} activities/s  "
          f"ratio to raw upserts {result.record_many_per_s / result.baseline_per_s:.2f}  "
          f"{verdict(result.record_many_per_s >= TARGET)}")
    print(f"  baseline {args.backend} upserts: {result.baseline_per_s:>7,.0f} rows/s")
    print(f"  stored messages {result.stored_messages:,} (expected {expected:,}): "
          f"{'ok' if result.stored_messages == expected else 'WRONG'}")


if __name__ == "__main__":
    main()
