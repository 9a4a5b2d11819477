"""Every route answers any body and any path with a 4xx or a success, never a 5xx (Discord answers 400 at once)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from discord_sim import DiscordSimulator

from .conftest import World

EXAMPLES_PER_ROUTE = 25
ROUTES = sorted({(r.method, r.template) for r in DiscordSimulator().http.router.routes})
# Field names the routes read, so that generated bodies get past the outer checks and reach the handlers.
KEYS = ["content", "embeds", "components", "allowed_mentions", "flags", "attachments", "message_reference",
        "type", "data", "choices", "custom_id", "title", "description", "fields", "name", "value", "color",
        "footer", "image", "url", "style", "label", "options", "parse", "users", "roles", "recipient_id",
        "id", "nick", "channel_id", "message_id", "tts", "nonce", "default_member_permissions", "emoji"]
JUNK_IDS = ["abc", "-1", "0", "1e5", "99999999999999999999999999", "@me", "%20", "1.5", "%F0%9F%91%8D"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                    st.text(max_size=30))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8),
                                                                inner, max_size=5),
    max_leaves=20,
)
bodies = st.one_of(json_values, st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6))


async def known_ids(sim: DiscordSimulator, world: World) -> list[str]:
    """Ids and tokens that exist, so that requests reach the handlers: a posted message, a live interaction
    (made directly: no client is connected to send it to). Made once per simulator."""
    if not hasattr(sim, "fuzz_ids"):
        ids = [world.guild.id, world.general.id, world.alice.id, world.mods.id, sim.bot_user_id, sim.application_id]
        message = await sim.send_message(world.general.id, world.alice.id, "hello")
        sim.interaction_response_deadline = 3600
        user = {"id": str(world.alice.id), "username": "alice"}
        payload = {"guild_id": str(world.guild.id), "channel_id": str(world.general.id),
                   "member": {"user": user}, "data": {"name": "ping", "type": 1}}
        ix = sim.interaction_routes.new(2, payload)
        sim.fuzz_ids = [str(i) for i in ids] + [message["id"], "@original", ix.token, str(ix.id)]  # type: ignore[attr-defined]
    return sim.fuzz_ids  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {t}" for m, t in ROUTES])
@settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_no_body_or_path_makes_a_route_answer_5xx(
    sim: DiscordSimulator, world: World, method: str, template: str, data: st.DataObject
) -> None:
    ids = st.sampled_from(await known_ids(sim, world)) | st.sampled_from(JUNK_IDS)
    path = template
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + data.draw(ids) + path[end + 1 :]
    body: Any = data.draw(bodies) if method in ("POST", "PUT", "PATCH") else None
    headers = {"Authorization": f"Bot {sim.token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        raw = None if body is None else json.dumps(body)
        async with session.request(method, sim.api_base + path, data=raw, headers=headers) as resp:
            assert resp.status < 500, f"{method} {path} {raw!r} -> {resp.status} {await resp.text()}"
