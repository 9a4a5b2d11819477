"""What an interaction callback answers (``with_response``): a reply's message, never a deferral's placeholder."""

from __future__ import annotations

from discord_sim import DiscordSimulator, SimInteraction

from .conftest import World, call_api


def interaction(sim: DiscordSimulator, world: World) -> SimInteraction:
    """An interaction made directly (no client is connected to send it to)."""
    user = world.alice.payload()
    payload = {"guild_id": str(world.guild.id), "channel_id": str(world.general.id),
               "member": {"user": user}, "data": {"name": "ping", "type": 1}}
    return sim.interaction_routes.new(2, payload)


async def test_a_deferred_callback_returns_no_message_resource(sim: DiscordSimulator, world: World) -> None:
    ix = interaction(sim, world)
    status, body = await call_api(sim, "POST", f"/interactions/{ix.id}/{ix.token}/callback?with_response=true",
                                  {"type": 5})
    assert status == 200
    assert body["resource"] == {"type": 5}
    assert body["interaction"]["response_message_loading"] is True


async def test_a_reply_callback_returns_its_message(sim: DiscordSimulator, world: World) -> None:
    ix = interaction(sim, world)
    status, body = await call_api(sim, "POST", f"/interactions/{ix.id}/{ix.token}/callback?with_response=true",
                                  {"type": 4, "data": {"content": "pong"}})
    assert status == 200 and body["resource"]["message"]["content"] == "pong"
