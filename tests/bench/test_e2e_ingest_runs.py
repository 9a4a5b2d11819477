"""The end-to-end ingest benchmark runs once at a tiny size so it never rots. It checks counts, never time."""

from __future__ import annotations

from bench import e2e_ingest


async def test_e2e_ingest_benchmark_stores_every_flooded_message() -> None:
    result = await e2e_ingest.run(members=50, events=500)
    assert result.bare.handled == result.bot.handled == 500
    assert result.bot.stored_messages == 500
    assert result.bot.unlocks and result.bot.unlocks >= 50  # First Step for every member
    assert result.ratio > 0
    assert result.bot.rss_mb > 0
    assert "ratio b/a" in e2e_ingest.report(result)
