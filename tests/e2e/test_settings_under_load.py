"""/settings commands that change something answer Discord before they write: a write that waits for the
database (another guild's long transaction holds the write lock) must not make them miss the 3 s deadline.

The test holds the database's write lock itself, so the command's write cannot finish until it is let go;
the command must have acknowledged the interaction (a private deferral) by then, and its reply follows.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import AchievementsBot
from discord_sim import DiscordSimulator
from tests.e2e.conftest import Community
from tests.e2e.database_support import database_busy

DEFERRED = 5
EPHEMERAL = 64


@pytest.mark.parametrize(("command", "options", "reply"), [
    ("settings timezone", {"timezone": "Europe/Paris"}, "🕛 Timezone set to **Europe/Paris**"),
    ("settings announce-channel", {}, "📣 Announcements now go to the channel where the activity happened."),
    ("settings anti-spam", {"cooldown": 30}, "🛡️ Anti-spam: cooldown 30 s, minimum length 0."),
    ("settings cards", {"enabled": False}, "🖼️ Profile cards off: /profile shows text only."),
])
async def test_a_settings_change_is_acknowledged_privately_before_it_waits_for_the_database(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community, command: str,
    options: dict[str, Any], reply: str,
) -> None:
    await running_bot.recorder.guild(community.id)  # loaded before the database is busy, as in a running bot
    async with database_busy(running_bot):
        ix = await simulator.invoke_command(community.id, community.general.id, community.moderator.id, command,
                                            **options)
        response = await ix.response()

        assert response["type"] == DEFERRED
        assert response["data"]["flags"] & EPHEMERAL

    message = await ix.message()
    assert message["content"].startswith(reply)
    assert ix.ephemeral
