"""Each benchmark runs once at a tiny size so it never rots. These check results, never time."""

from __future__ import annotations

from bench import cards, engine_ingest, export, read_paths, rollover


async def test_engine_ingest_benchmark_stores_every_activity() -> None:
    result = await engine_ingest.run(members=50, events=500)
    assert result.stored_messages == 50 + 2 * 500
    assert result.record_per_s > 0 and result.baseline_per_s > 0


async def test_read_paths_benchmark_measures_each_read() -> None:
    figures = await read_paths.measure(members=300, samples=5)
    for name in ("profile", "leaderboard page 1", "leaderboard random page", "jump to me (page_of)"):
        assert len(figures[name]) == 5


async def test_rollover_benchmark_resets_the_same_streaks_as_a_plain_update() -> None:
    result = await rollover.run(members=2000, cached=200)
    assert result["reset"] == result["baseline_reset"] > 0


def test_cards_benchmark_renders_and_then_serves_from_the_cache() -> None:
    result = cards.run(samples=4)
    assert result["p50"] > 0 and result["base_p50"] > 0
    assert result["renders"] == 4  # four distinct cards drawn once each; the second pass only hit the cache


async def test_export_benchmark_exports_every_member_it_scanned() -> None:
    result = await export.run(members=300)
    assert result["members"] == 300
    assert result["rows"] >= 300 and result["size_mb"] > 0
