"""`python -m bot sandbox`: the bot against the local Discord simulator, a scripted community, a transcript.

No token and no Discord account needed: everything runs on 127.0.0.1 with a temporary database.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from bot.app import AchievementsBot, running
from bot.clock import FakeClock
from bot.settings import load_settings
from discord_sim import DiscordSimulator

log = logging.getLogger(__name__)

MANAGE_GUILD = 1 << 5


class Transcript:
    """Prints what the bot posted, as a person would read it, once each."""

    def __init__(self, sim: DiscordSimulator, names: dict[int, str], out: TextIO) -> None:
        self.sim = sim
        self.names = names
        self.out = out
        self.seen: set[str] = set()

    def say(self, text: str) -> None:
        print(text, file=self.out)

    def readable(self, text: str) -> str:
        def name(match: re.Match[str]) -> str:
            return "@" + self.names.get(int(match.group(1)), "someone")

        text = re.sub(r"<@!?(\d+)>", name, text)
        text = re.sub(r"<t:(\d+)(?::\w)?>", lambda m: datetime.fromtimestamp(int(m.group(1)), UTC).strftime(
            "%Y-%m-%d"), text)
        return text.replace("**", "")

    def message(self, where: str, message: dict[str, Any]) -> None:
        lines = []
        if message.get("content"):
            lines.append(self.readable(message["content"]))
        for embed in message.get("embeds") or []:
            if embed.get("title"):
                lines.append(f"┃ {self.readable(embed['title'])}")
            if embed.get("description"):
                lines.extend(f"┃ {self.readable(line)}" for line in embed["description"].splitlines())
            for field in embed.get("fields") or []:
                value = self.readable(field["value"]).replace("\n", "\n  ┃     ")
                lines.append(f"┃   {self.readable(field['name'])}: {value}")
            if embed.get("footer"):
                lines.append(f"┃ {self.readable(embed['footer']['text'])}")
        for attachment in message.get("attachments") or []:
            lines.append(f"┃ 🖼️ {attachment['filename']} ({attachment['size'] // 1024} kB image)")
        self.say(f"  [{where}] 🤖 " + "\n  ".join(lines))

    def new_posts(self, channel_id: int, where: str) -> None:
        for message in self.sim.channel_messages(channel_id):
            if message["id"] not in self.seen:
                self.seen.add(message["id"])
                self.message(where, message)


async def settle(bot: AchievementsBot) -> None:
    """Write pending activity and post every due announcement, so the transcript follows the script."""
    await asyncio.sleep(0.05)  # let the gateway events reach the bot
    await bot.services.recorder.flush()
    await bot.services.announcer.deliver_due()


async def run_sandbox(out: TextIO, database: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    async with DiscordSimulator(clock=clock) as sim:
        moderator = sim.create_user("maya_mod")
        guild = sim.create_guild("Study Hall", owner_id=moderator.id)
        general = guild.system_channel_id or 0
        mods = sim.create_role(guild.id, "Moderators", permissions=MANAGE_GUILD, position=2)
        sim.add_member(guild.id, moderator.id, roles=[mods.id])
        alice, bob, carol = (sim.create_user(n) for n in ("alice", "bob", "carol"))
        for user in (alice, bob, carol):
            sim.add_member(guild.id, user.id)
        names = {u.id: u.username for u in (moderator, alice, bob, carol)}
        transcript = Transcript(sim, names, out)
        settings = load_settings({
            "DISCORD_TOKEN": sim.token, "DATABASE_PATH": str(database), "DISCORD_API_BASE": sim.api_base,
            "DISCORD_GATEWAY_URL": sim.gateway_url, "DISCORD_CDN_URL": sim.cdn_base, "DEV_GUILD_ID": str(guild.id),
            "PRIVILEGED_INTENTS": "members,message_content",
        })
        say = transcript.say
        async with running(settings, clock=clock, ready_timeout=20, guild_ready_timeout=0.1) as bot:
            say(f"The bot is online as {bot.user} in '{guild.name}' with {len(bot.tree.get_commands())} commands "
                "synced.\n")

            say("── Day 1 (Monday): alice says hello and keeps chatting; carol reacts to her messages")
            alice_messages = []
            for i in range(12):
                msg = await sim.send_message(general, alice.id, f"hello #{i}, anyone studying tonight?")
                alice_messages.append(msg)
                clock.advance(timedelta(minutes=1))
            await sim.send_message(general, bob.id, "hi alice!")
            for msg in alice_messages[:10]:
                await sim.add_reaction(general, msg["id"], carol.id, "👍")
            await settle(bot)
            transcript.new_posts(general, "#general")

            for day, label in ((1, "Day 2 (Tuesday)"), (2, "Day 3 (Wednesday)")):
                clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC) + timedelta(days=day))
                await bot.services.scheduler.run_due_rollovers()
                say(f"\n── {label}: midnight rollover ran; alice and bob come back")
                await sim.send_message(general, alice.id, "morning! back for more")
                await sim.send_message(general, bob.id, "same here")
                await settle(bot)
                transcript.new_posts(general, "#general")

            say("\n── A moderator adds an achievement with /achievement add")
            ix = await sim.invoke_command(
                guild.id, general, moderator.id, "achievement add", name="Helping Hand",
                description="Help three classmates with their homework.", points=50,
                condition="tasks_completed >= 3",
            )
            transcript.message("reply only maya_mod sees", await ix.message())
            say("\n── The moderator records alice's help with /stat add")
            ix = await sim.invoke_command(guild.id, general, moderator.id, "stat add", member=alice.id,
                                          stat="tasks_completed", amount=3)
            transcript.message("reply only maya_mod sees", await ix.message())
            await settle(bot)
            transcript.new_posts(general, "#general")

            say("\n── alice looks at her /profile")
            ix = await sim.invoke_command(guild.id, general, alice.id, "profile")
            transcript.message("#general", await ix.message())
            say("\n── The final /leaderboard")
            ix = await sim.invoke_command(guild.id, general, bob.id, "leaderboard")
            transcript.message("#general", await ix.message())
        unknown = sim.unknown_routes
        if unknown:
            say(f"\n(the simulator saw {len(unknown)} requests to routes it does not know)")


def main(_argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("discord.client").setLevel(logging.ERROR)  # voice libraries are not needed here
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="achievements-sandbox-") as folder:
        asyncio.run(run_sandbox(sys.stdout, Path(folder) / "sandbox.db"))
    print(f"\nSandbox finished in {time.monotonic() - started:.1f} s; nothing left running.")  # noqa: T201
    return 0
