"""Request bodies held to Discord's OpenAPI specification, with the deviations Discord's documentation makes."""

from __future__ import annotations

from discord_sim import DiscordSimulator

from .conftest import World, call_api


def messages(world: World) -> str:
    return f"/channels/{world.general.id}/messages"


async def test_a_body_against_the_spec_is_refused_with_an_errors_tree_pointing_at_the_field(
    sim: DiscordSimulator, world: World
) -> None:
    status, body = await call_api(sim, "POST", messages(world), {"embeds": [{"title": "x", "color": 1 << 24}]})

    assert status == 400
    assert body["code"] == 50035 and body["message"] == "Invalid Form Body"
    assert body["errors"]["embeds"]["0"]["color"]["_errors"][0]["code"] == "NUMBER_TYPE_MAX"
    assert sim.channel_messages(world.general.id) == []


async def test_a_wrongly_typed_field_is_named_in_the_errors_tree(sim: DiscordSimulator, world: World) -> None:
    status, body = await call_api(sim, "POST", messages(world), {"content": {"text": "hi"}})

    assert status == 400
    assert body["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_STRING"


async def test_a_refused_body_is_recorded_as_a_spec_violation(sim: DiscordSimulator, world: World) -> None:
    await call_api(sim, "POST", messages(world), {"embeds": "not a list"})

    assert [(v.method, v.path) for v in sim.spec_violations] == [("POST", messages(world))]
    assert "embeds" in sim.spec_violations[0].errors


async def test_integer_snowflakes_are_accepted_as_discord_does(sim: DiscordSimulator, world: World) -> None:
    body = {"content": "hi", "allowed_mentions": {"parse": [], "users": [world.alice.id]}}

    status, _ = await call_api(sim, "POST", messages(world), body)

    assert status == 200
    assert sim.spec_violations == []


async def test_content_past_2000_characters_is_refused_though_the_spec_allows_4000(
    sim: DiscordSimulator, world: World
) -> None:
    status, body = await call_api(sim, "POST", messages(world), {"content": "x" * 2001})

    assert status == 400
    assert body["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"


async def test_the_payload_json_part_of_a_multipart_body_is_validated(sim: DiscordSimulator, world: World) -> None:
    status, body = await call_api(sim, "POST", messages(world), payload_json={"content": "hi", "tts": "yes"})

    assert status == 400
    assert "tts" in body["errors"]


async def test_a_body_that_is_not_json_gets_discords_invalid_json_error(sim: DiscordSimulator, world: World) -> None:
    status, body = await call_api(sim, "POST", messages(world), raw=b"{not json")

    assert status == 400
    assert body["code"] == 50109
