"""Entry point: `python -m bot` runs the bot; `python -m bot sandbox` runs it against a local Discord simulator."""

from __future__ import annotations

import asyncio
import logging
import sys

import discord

from bot.settings import SettingsError, load_settings
from bot.storage import StorageError
from bot.storage.leases import LeaseError

log = logging.getLogger("bot")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)-8s %(name)s: %(message)s",
    )
    # discord.py's gateway chatter is noise at INFO unless asked for.
    if level != "DEBUG":
        logging.getLogger("discord").setLevel(logging.WARNING)


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)  # noqa: T201 - the one clear line an operator sees
    return 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "sandbox":
        from bot.sandbox import main as sandbox_main

        return sandbox_main(args[1:])
    if args and args[0] in ("-h", "--help"):
        print(  # noqa: T201
            "usage: python -m bot [sandbox]\n"
            "  (no argument) run the bot with the settings in the environment / .env\n"
            "  sandbox       run the bot against a local Discord simulator; no token needed"
        )
        return 0
    if args:
        return fail(f"unknown command {args[0]!r}; use `python -m bot` or `python -m bot sandbox`")
    try:
        settings = load_settings()
    except SettingsError as exc:
        return fail(str(exc))
    configure_logging(settings.log_level)
    from bot.app import ExtensionLoadError, run_forever

    try:
        asyncio.run(run_forever(settings))
    except (StorageError, LeaseError, ExtensionLoadError) as exc:
        return fail(str(exc))
    except discord.LoginFailure:
        return fail("Discord refused DISCORD_TOKEN: copy the bot token again from the Developer Portal (Bot tab)")
    except discord.PrivilegedIntentsRequired:
        return fail(
            "Discord refused the privileged intents in PRIVILEGED_INTENTS: enable them in the Developer Portal "
            "(Bot tab, Privileged Gateway Intents) or remove them from PRIVILEGED_INTENTS"
        )
    except (OSError, discord.GatewayNotFound, discord.HTTPException) as exc:
        return fail(f"cannot reach Discord: {exc}")
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
