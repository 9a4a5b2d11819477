"""`python -m bot` stops cleanly on SIGTERM: it exits 0 within seconds with every counted activity written."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

from discord_sim import DiscordSimulator
from tests.e2e.conftest import Community

ROOT = Path(__file__).resolve().parents[2]


async def test_sigterm_flushes_pending_writes_and_exits_zero(
    simulator: DiscordSimulator, community: Community, tmp_path: Path
) -> None:
    database = tmp_path / "achievements.db"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": simulator.token,
        "DISCORD_API_BASE": simulator.api_base,
        "DISCORD_GATEWAY_URL": simulator.gateway_url,
        "DATABASE_PATH": str(database),
        "DEV_GUILD_ID": str(community.id),
        "PRIVILEGED_INTENTS": "members",
        "LOG_LEVEL": "INFO",
    }
    # cwd: a directory without a .env, so only the settings above apply.
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await simulator.wait_until_connected(timeout=20)
        await simulator.wait_for(lambda: simulator.synced_commands(community.id), timeout=20)
        await simulator.send_message(community.general.id, community.alice.id, "first")
        await simulator.wait_for(lambda: simulator.channel_messages(community.general.id), timeout=10)
        # Messages that unlock nothing: the bot writes them with its next periodic flush, or at shutdown.
        for i in range(3):
            await simulator.send_message(community.general.id, community.alice.id, f"message {i}")
        # The bot answers this only after it has handled the messages sent before it (one ordered gateway).
        reply = await simulator.invoke_command(community.id, community.general.id, community.bob.id, "achievements")
        await reply.response(timeout=10)

        bot.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(bot.communicate(), timeout=10)
    finally:
        if bot.returncode is None:
            bot.kill()
            await bot.wait()

    assert bot.returncode == 0, output.decode(errors="replace")
    assert b"Traceback" not in output, output.decode(errors="replace")
    with sqlite3.connect(database) as db:
        row = db.execute(
            "SELECT messages, logins FROM member_stats WHERE guild_id = ? AND member_id = ?",
            (community.id, community.alice.id),
        ).fetchone()
    assert row == (4, 1)
