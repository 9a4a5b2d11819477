"""A cog that fails to load stops `python -m bot` at start with one `error:` line, and no command sync happens:
syncing the tree without that cog would delete its slash commands from Discord."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from discord_sim import DiscordSimulator
from tests.e2e.conftest import Community

COMMAND_SYNC = r"/applications/\d+/(guilds/\d+/)?commands$"
# The real entry point, with one more extension in the bot's list (as a cog added by an operator would be).
WITH_EXTENSION = (
    "import sys, bot.app; bot.app.EXTENSIONS = (*bot.app.EXTENSIONS, sys.argv[1]); "
    "from bot.__main__ import main; sys.exit(main([]))"
)


@dataclass
class Exit:
    code: int
    stderr: str

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


async def start_with_extension(sim: DiscordSimulator, community: Community, folder: Path, extension: str) -> Exit:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(folder),
        "DISCORD_TOKEN": sim.token,
        "DATABASE_PATH": str(folder / "achievements.db"),
        "DISCORD_API_BASE": sim.api_base,
        "DISCORD_GATEWAY_URL": sim.gateway_url,
        "DISCORD_CDN_URL": sim.cdn_base,
        "DEV_GUILD_ID": str(community.id),
        "LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WITH_EXTENSION, extension, cwd=folder, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    except TimeoutError:
        process.kill()  # it started despite the broken cog
        await process.wait()
        return Exit(-1, "still running 30 s later")
    assert process.returncode is not None
    return Exit(process.returncode, stderr.decode())


async def test_a_cog_that_raises_while_loading_stops_the_bot_with_one_error_line(
    simulator: DiscordSimulator, community: Community, tmp_path: Path
) -> None:
    (tmp_path / "broken_cog.py").write_text("async def setup(bot):\n    raise RuntimeError('no config for it')\n")

    result = await start_with_extension(simulator, community, tmp_path, "broken_cog")

    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.errors) == 1, result.stderr
    assert "broken_cog" in result.errors[0] and "no config for it" in result.errors[0]


async def test_a_cog_that_fails_to_load_leaves_the_synced_commands_alone(
    simulator: DiscordSimulator, community: Community, tmp_path: Path
) -> None:
    (tmp_path / "broken_cog.py").write_text("raise ImportError('a missing dependency')\n")

    result = await start_with_extension(simulator, community, tmp_path, "broken_cog")

    assert result.code == 2, result.stderr
    assert simulator.requests_to("PUT", COMMAND_SYNC) == []


async def test_an_extension_that_does_not_exist_stops_the_bot_with_one_error_line(
    simulator: DiscordSimulator, community: Community, tmp_path: Path
) -> None:
    result = await start_with_extension(simulator, community, tmp_path, "cogs.no_such_cog")

    assert result.code == 2, result.stderr
    assert len(result.errors) == 1, result.stderr
    assert "cogs.no_such_cog" in result.errors[0]
    assert simulator.requests_to("PUT", COMMAND_SYNC) == []
