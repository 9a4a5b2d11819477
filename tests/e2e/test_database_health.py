"""A database that stops taking writes while the bot runs: the bot says so in /settings show, keeps what it
could not save, and saves it once writes work again.

Writes are made to fail with `PRAGMA query_only = ON` on the bot's own connection (see `set_read_only`): SQLite
then refuses every write with SQLITE_READONLY, exactly as it does for a file, folder or mount made read-only after
start, while reads go on; it also works as root, whom chmod cannot stop. `query_only = OFF` is the operator
fixing it.
"""

from __future__ import annotations

from typing import Any

from bot.app import AchievementsBot
from discord_sim import DiscordSimulator
from tests.e2e.activity_support import wait_stat
from tests.e2e.conftest import Community
from tests.e2e.database_support import set_read_only


async def settings_show(simulator: DiscordSimulator, community: Community) -> dict[str, Any]:
    ix = await simulator.invoke_command(community.id, community.general.id, community.moderator.id, "settings show")
    message = await ix.message()
    assert ix.ephemeral
    embed: dict[str, Any] = message["embeds"][0]
    return embed


async def post(simulator: DiscordSimulator, bot: AchievementsBot, community: Community, count: int,
               total: int) -> None:
    for i in range(count):
        await simulator.send_message(community.general.id, community.alice.id, f"message {i}")
    await wait_stat(simulator, bot, community.id, community.alice.id, "messages", total)


async def test_settings_show_warns_while_writes_fail_and_nothing_is_lost_once_they_work_again(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await post(simulator, running_bot, community, 3, 3)
    await running_bot.recorder.flush()
    assert "⚠️" not in (await settings_show(simulator, community)).get("description", "")

    await set_read_only(running_bot, True)
    await post(simulator, running_bot, community, 5, 8)
    await simulator.wait_for(lambda: running_bot.storage.db.write_health.failing)
    warning = (await settings_show(simulator, community))["description"]

    assert warning.startswith("⚠️ **The database is refusing writes**")
    assert "attempt to write a readonly database" in warning
    assert "not being saved" in warning
    stored, _ = await running_bot.storage.members.load(community.id, community.alice.id)
    assert stored.get("messages") == 3

    await set_read_only(running_bot, False)
    await simulator.wait_for(lambda: not running_bot.storage.db.write_health.failing)

    stored, _ = await running_bot.storage.members.load(community.id, community.alice.id)
    assert stored.get("messages") == 8
    assert "⚠️" not in (await settings_show(simulator, community)).get("description", "")
