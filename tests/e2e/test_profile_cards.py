"""Profile cards end to end: /profile's card attachment, the setting that turns it off, avatars from the CDN."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from bot.app import AchievementsBot
from bot.cards import HEIGHT, WIDTH
from discord_sim import DiscordSimulator
from tests.e2e.conftest import Community
from tests.e2e.test_commands_members import chat, field, run, shown

Payload = dict[str, Any]


def card_of(message: Payload, simulator: DiscordSimulator) -> Image.Image:
    """The card image the member sees: the attachment the embed shows, as the CDN serves it."""
    [attachment] = message["attachments"]
    assert attachment["filename"] == "profile.png"
    assert message["embeds"][0]["image"]["url"] == attachment["url"]
    data = simulator.world.attachments[int(attachment["id"])]
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_profile_replies_with_the_card_as_the_embeds_image(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 12)

    message = await shown(simulator, community, community.alice, "profile")

    image = card_of(message, simulator)
    assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT))
    embed = message["embeds"][0]
    assert embed["title"] == "🥉 alice" and field(embed, "Rank") == "🥇 #1 of 1 · Top 100%"
    [upload] = [r for r in simulator.requests_to("POST", r"^/webhooks/") if r.files]
    assert [f.filename for f in upload.files] == ["profile.png"]
    assert upload.files[0].data.startswith(b"\x89PNG")


async def test_the_card_draws_the_avatar_fetched_from_the_cdn(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await shown(simulator, community, community.alice, "profile")

    fetched = [r for r in simulator.requests if r.path.startswith(f"/avatars/{community.alice.id}/")]
    assert [r.status for r in fetched] == [200]
    assert fetched[0].query.get("size") == "128"


async def test_a_failed_avatar_fetch_draws_initials_and_the_card_is_still_sent(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    simulator.fail_next("GET", r"^/avatars/", status=404)
    with_fallback = card_of(await shown(simulator, community, community.bob, "profile"), simulator)
    with_avatar = card_of(await shown(simulator, community, community.bob, "profile"), simulator)

    avatar_area = (40, 42, 168, 170)
    assert with_fallback.crop(avatar_area).tobytes() != with_avatar.crop(avatar_area).tobytes()
    assert running_bot.cards.renders == 2  # the fallback card was not cached over the real avatar


async def test_a_second_profile_with_unchanged_data_is_served_from_the_cache(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    await chat(simulator, running_bot, community, community.alice, 3)
    first = card_of(await shown(simulator, community, community.alice, "profile"), simulator)
    second = card_of(await shown(simulator, community, community.alice, "profile"), simulator)
    assert first.tobytes() == second.tobytes() and running_bot.cards.renders == 1

    await chat(simulator, running_bot, community, community.alice, 10)  # First Step: points and unlocks change
    third = card_of(await shown(simulator, community, community.alice, "profile"), simulator)
    assert third.tobytes() != first.tobytes() and running_bot.cards.renders == 2


async def test_with_cards_turned_off_profile_is_text_only(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    reply = await (await run(simulator, community, community.moderator, "settings cards", enabled=False)).message()
    assert reply["content"] == "🖼️ Profile cards off: /profile shows text only."

    message = await shown(simulator, community, community.alice, "profile")

    assert message["attachments"] == []
    assert "image" not in message["embeds"][0]
    assert message["embeds"][0]["thumbnail"]["url"].startswith(simulator.cdn_base + "/avatars/")
    settings = await (await run(simulator, community, community.moderator, "settings show")).message()
    assert field(settings["embeds"][0], "Profile cards") == "off"


async def test_cards_are_on_by_default_and_can_be_turned_back_on(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    settings = await (await run(simulator, community, community.moderator, "settings show")).message()
    assert field(settings["embeds"][0], "Profile cards") == "on"
    await (await run(simulator, community, community.moderator, "settings cards", enabled=False)).message()
    await (await run(simulator, community, community.moderator, "settings cards", enabled=True)).message()

    message = await shown(simulator, community, community.alice, "profile")

    assert len(message["attachments"]) == 1


async def test_a_card_that_fails_to_render_leaves_the_text_profile(
    running_bot: AchievementsBot, simulator: DiscordSimulator, community: Community
) -> None:
    async def broken(*_args: object) -> bytes:
        raise RuntimeError("renderer broke")

    running_bot.cards.card = broken  # type: ignore[method-assign]

    message = await shown(simulator, community, community.alice, "profile")

    assert message["attachments"] == [] and message["embeds"][0]["title"] == "🥉 alice"
