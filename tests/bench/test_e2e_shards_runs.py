"""The shard scaling benchmark runs once at a tiny size so it never rots. It checks counts, never time."""

from __future__ import annotations

from bench import e2e_shards
from tests.support.backends import fresh_database


async def test_e2e_shards_benchmark_counts_every_flooded_message_with_1_and_2_processes() -> None:
    async with fresh_database():  # skips, or fails under REQUIRE_POSTGRES=1, without a PostgreSQL server
        pass
    result = await e2e_shards.run(members=20, events=400)

    assert {run.handled for run in result.runs.values()} == {400}
    assert result.scaling("bare") > 0 and result.scaling("bot") > 0
    assert "bot scaling / bare scaling" in e2e_shards.report(result)
