"""The sandbox newcomers run first: it must show the bot working, start to finish."""

from __future__ import annotations

import io
from pathlib import Path

from bot.sandbox import run_sandbox


async def test_sandbox_transcript_shows_unlocks_a_tier_up_a_profile_and_the_leaderboard(tmp_path: Path) -> None:
    out = io.StringIO()
    await run_sandbox(out, tmp_path / "sandbox.db")
    transcript = out.getvalue()
    assert "🏆 Achievement unlocked!" in transcript
    assert "First Step: Send your first message." in transcript
    assert "⬆️ New tier reached!" in transcript
    assert "🥉 Beginner → 🥈 Student" in transcript
    assert "Created: Helping Hand" in transcript
    assert "Helping Hand: Help three classmates with their homework." in transcript
    assert "Student · 155 points" in transcript  # alice's profile
    assert "🥇 @alice · 155 pts" in transcript  # the leaderboard
    assert "requests to routes it does not know" not in transcript
