"""Slash commands, autocomplete and buttons through the simulator, with a bare discord.py command tree."""

from __future__ import annotations

import asyncio

import discord
import pytest
from discord import app_commands

from discord_sim import CommandNotAvailable, DiscordSimulator

from .conftest import Runner, World, make_intents

ACHIEVEMENTS = ["first-steps", "first-reaction", "night-owl"]


class OnlyInvoker(discord.ui.View):
    def __init__(self, invoker_id: int) -> None:
        super().__init__(timeout=30)
        self.invoker_id = invoker_id
        self.clicks = 0

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.invoker_id:
            await interaction.response.send_message("Only the invoker may page.", ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Next", custom_id="page:next")
    async def next_page(self, interaction: discord.Interaction, button: discord.ui.Button[OnlyInvoker]) -> None:
        self.clicks += 1
        await interaction.response.edit_message(content=f"page {self.clicks + 1}")


def build_client(guild_id: int) -> discord.Client:
    client = discord.Client(intents=make_intents(), guild_ready_timeout=0.05)
    tree = app_commands.CommandTree(client)
    guild = discord.Object(guild_id)
    mods_only = discord.Permissions(manage_guild=True)
    achievement = app_commands.Group(name="achievement", description="Achievements", default_permissions=mods_only)

    @achievement.command(name="add", description="Add an achievement")
    async def add(interaction: discord.Interaction, name: str, points: app_commands.Range[int, 0, 1000]) -> None:
        embed = discord.Embed(title=f"Added {name}", description=f"{points} points")
        await interaction.response.send_message(embed=embed)

    @achievement.command(name="grant", description="Grant an achievement")
    async def grant(interaction: discord.Interaction, member: discord.Member, achievement: str) -> None:
        await interaction.response.defer(ephemeral=True)
        await interaction.followup.send(f"Granted {achievement} to {member.display_name}", ephemeral=True)

    @grant.autocomplete("achievement")
    async def grant_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=a, value=a) for a in ACHIEVEMENTS if a.startswith(current)]

    tree.add_command(achievement, guild=guild)

    @tree.command(name="secret", description="Something only you see", guild=guild)
    async def secret(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("just for you", ephemeral=True)

    @tree.command(name="pages", description="A paginated reply", guild=guild)
    async def pages(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("page 1", view=OnlyInvoker(interaction.user.id))

    client.tree = tree  # type: ignore[attr-defined]
    return client


async def synced(client: discord.Client, world: World) -> None:
    await client.tree.sync(guild=discord.Object(world.guild.id))  # type: ignore[attr-defined]


async def test_sync_stores_the_command_tree_for_the_guild(sim: DiscordSimulator, world: World, running: Runner) -> None:
    async with running(build_client(world.guild.id)) as client:
        await synced(client, world)
    commands = {c["name"]: c for c in sim.synced_commands(world.guild.id)}
    assert set(commands) == {"achievement", "secret", "pages"}
    assert [o["name"] for o in commands["achievement"]["options"]] == ["add", "grant"]
    assert commands["achievement"]["default_member_permissions"] == str(discord.Permissions(manage_guild=True).value)
    assert sim.synced_commands() == []


async def test_a_subcommand_replies_with_an_embed(sim: DiscordSimulator, world: World, running: Runner) -> None:
    async with running(build_client(world.guild.id)) as client:
        await synced(client, world)
        ix = await sim.invoke_command(world.guild.id, world.general.id, world.moderator.id, "achievement add",
                                      name="Early bird", points=10)
        body = await ix.response()
    assert body["type"] == 4
    assert body["data"]["embeds"][0]["title"] == "Added Early bird"
    assert ix.original_message is not None and not ix.ephemeral
    assert [m["embeds"][0]["title"] for m in sim.channel_messages(world.general.id)] == ["Added Early bird"]


async def test_an_ephemeral_reply_carries_flag_64_and_stays_out_of_the_channel(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(build_client(world.guild.id)) as client:
        await synced(client, world)
        ix = await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "secret")
        body = await ix.response()
    assert body["data"]["flags"] & 64
    assert ix.ephemeral
    assert sim.channel_messages(world.general.id) == []


async def test_a_deferred_reply_becomes_visible_through_its_follow_up(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(build_client(world.guild.id)) as client:
        await synced(client, world)
        ix = await sim.invoke_command(world.guild.id, world.general.id, world.moderator.id, "achievement grant",
                                      member=world.alice.id, achievement="night-owl")
        message = await ix.message()
    assert (await ix.response())["type"] == 5
    assert message["content"] == "Granted night-owl to alice"
    assert message["flags"] & 64


async def test_autocomplete_returns_the_choices_the_bot_offers(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(build_client(world.guild.id)) as client:
        await synced(client, world)
        choices = await sim.autocomplete(world.guild.id, world.general.id, world.moderator.id, "achievement grant",
                                         focused="achievement", value="first", member=world.alice.id)
    assert [c["value"] for c in choices] == ["first-steps", "first-reaction"]


async def test_commands_hidden_by_default_permissions_cannot_be_invoked(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(build_client(world.guild.id)) as client:
        await synced(client, world)
        with pytest.raises(CommandNotAvailable):
            await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "achievement add",
                                     name="x", points=1)


async def test_option_values_outside_their_range_are_refused_like_the_discord_client_does(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(build_client(world.guild.id)) as client:
        await synced(client, world)
        with pytest.raises(ValueError, match="outside"):
            await sim.invoke_command(world.guild.id, world.general.id, world.moderator.id, "achievement add",
                                     name="x", points=5000)


async def test_a_button_click_runs_the_view_and_only_the_invoker_may_page(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(build_client(world.guild.id)) as client:
        await synced(client, world)
        ix = await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "pages")
        first = await ix.message()
        click = await sim.click_button(first, "page:next", world.alice.id)
        assert (await click.response())["type"] == 7
        intruder = await sim.click_button(first, "page:next", world.bob.id)
        refusal = await intruder.response()
    assert sim.channel_messages(world.general.id)[0]["content"] == "page 2"
    assert refusal["type"] == 4 and refusal["data"]["flags"] & 64
    assert refusal["data"]["content"] == "Only the invoker may page."


async def test_responding_twice_is_refused_as_already_acknowledged(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    errors: list[Exception] = []
    client = discord.Client(intents=make_intents(), guild_ready_timeout=0.05)
    tree = app_commands.CommandTree(client)

    @tree.command(name="twice", description="Answers twice", guild=discord.Object(world.guild.id))
    async def twice(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("one")
        try:
            await interaction.client.http.request(discord.http.Route(
                "POST", "/interactions/{id}/{token}/callback", id=interaction.id, token=interaction.token
            ), json={"type": 4, "data": {"content": "two"}})
        except discord.HTTPException as exc:
            errors.append(exc)

    async with running(client):
        await tree.sync(guild=discord.Object(world.guild.id))
        ix = await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "twice")
        await ix.response()
        await sim.wait_for(lambda: errors)
    assert isinstance(errors[0], discord.HTTPException) and errors[0].code == 40060


class NameModal(discord.ui.Modal, title="Rename"):
    name: discord.ui.TextInput[NameModal] = discord.ui.TextInput(label="New name", custom_id="rename:name")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"renamed to {self.name.value}", ephemeral=True)


def extra_client(guild_id: int) -> discord.Client:
    client = discord.Client(intents=make_intents(), guild_ready_timeout=0.05)
    tree = app_commands.CommandTree(client)
    guild = discord.Object(guild_id)

    @tree.command(name="rename", description="Opens a modal", guild=guild)
    async def rename(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(NameModal())

    @tree.command(name="edited", description="Replies, then edits the reply", guild=guild)
    async def edited(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("draft")
        original = await interaction.original_response()
        await interaction.edit_original_response(content=f"final (was {original.content})")

    @tree.command(name="pick", description="A select menu", guild=guild)
    async def pick(interaction: discord.Interaction) -> None:
        view = discord.ui.View()
        select: discord.ui.Select[discord.ui.View] = discord.ui.Select(
            custom_id="pick:tier", options=[discord.SelectOption(label=t) for t in ("Gold", "Silver")]
        )

        async def chosen(inner: discord.Interaction) -> None:
            await inner.response.edit_message(content=f"picked {select.values[0]}", view=None)

        select.callback = chosen  # type: ignore[method-assign]
        view.add_item(select)
        await interaction.response.send_message("pick one", view=view)

    @tree.context_menu(name="Show profile", guild=guild)
    async def show_profile(interaction: discord.Interaction, member: discord.Member) -> None:
        await interaction.response.send_message(f"profile of {member.name}", ephemeral=True)

    @tree.command(name="slow", description="Answers too late", guild=guild)
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.1)
        try:
            await interaction.response.send_message("too late")
        except discord.NotFound as exc:
            client.late_errors.append(exc)  # type: ignore[attr-defined]

    @tree.command(name="public-defer", description="Defers publicly, follows up ephemerally", guild=guild)
    async def public_defer(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("meant to be private", ephemeral=True)

    @tree.command(name="private-defer", description="Defers ephemerally, follows up publicly", guild=guild)
    async def private_defer(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        await interaction.followup.send("meant to be public")

    @tree.command(name="public-defer-twice", description="Defers publicly, then two follow-ups", guild=guild)
    async def public_defer_twice(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("first")
        await interaction.followup.send("second, private", ephemeral=True)

    client.tree = tree  # type: ignore[attr-defined]
    client.late_errors = []  # type: ignore[attr-defined]
    return client


async def test_a_modal_is_shown_and_its_submission_reaches_on_submit(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(extra_client(world.guild.id)) as client:
        await synced(client, world)
        ix = await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "rename")
        assert (await ix.response())["type"] == 9
        submitted = await sim.submit_modal(ix, {"rename:name": "Ada"})
        reply = await submitted.message()
    assert reply["content"] == "renamed to Ada"


async def test_the_original_response_can_be_fetched_and_edited(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(extra_client(world.guild.id)) as client:
        await synced(client, world)
        ix = await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "edited")
        await sim.wait_for(lambda: ix.original_message and ix.original_message["edited_timestamp"])
    assert ix.original_message is not None and ix.original_message["content"] == "final (was draft)"


async def test_a_select_menu_choice_updates_the_message(sim: DiscordSimulator, world: World, running: Runner) -> None:
    async with running(extra_client(world.guild.id)) as client:
        await synced(client, world)
        ix = await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "pick")
        picked = await sim.select_option(await ix.message(), "pick:tier", world.alice.id, ["Silver"])
        updated = await picked.message()
    assert updated["content"] == "picked Silver" and updated["components"] == []


async def test_a_user_context_menu_resolves_its_target(sim: DiscordSimulator, world: World, running: Runner) -> None:
    async with running(extra_client(world.guild.id)) as client:
        await synced(client, world)
        ix = await sim.invoke_context_menu(world.guild.id, world.general.id, world.alice.id, "Show profile", world.bob)
        reply = await ix.message()
    assert reply["content"] == "profile of bob"


async def test_a_response_after_the_deadline_is_an_unknown_interaction(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    sim.interaction_response_deadline = 0.05
    async with running(extra_client(world.guild.id)) as client:
        await synced(client, world)
        await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "slow")
        await sim.wait_for(lambda: client.late_errors)  # type: ignore[attr-defined]
    assert client.late_errors[0].code == 10062  # type: ignore[attr-defined]


async def test_an_invalid_command_tree_is_refused_with_invalid_form_body(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(discord.Client(intents=make_intents(), guild_ready_timeout=0.05)) as client:
        bad = {"name": "Bad Name", "description": "x", "type": 1}
        with pytest.raises(discord.HTTPException) as excinfo:
            await client.http.bulk_upsert_guild_commands(client.application_id, world.guild.id, [bad])
    assert excinfo.value.code == 50035


async def test_a_public_defer_makes_its_first_follow_up_public_whatever_its_flags(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(extra_client(world.guild.id)) as client:
        await synced(client, world)
        ix = await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "public-defer")
        message = await ix.message()
    assert message["content"] == "meant to be private"
    assert not ix.ephemeral
    assert [m["content"] for m in sim.channel_messages(world.general.id)] == ["meant to be private"]


async def test_an_ephemeral_defer_keeps_its_first_follow_up_ephemeral(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(extra_client(world.guild.id)) as client:
        await synced(client, world)
        ix = await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "private-defer")
        message = await ix.message()
    assert message["content"] == "meant to be public"
    assert ix.ephemeral
    assert sim.channel_messages(world.general.id) == []


async def test_later_follow_ups_choose_their_own_visibility(
    sim: DiscordSimulator, world: World, running: Runner
) -> None:
    async with running(extra_client(world.guild.id)) as client:
        await synced(client, world)
        ix = await sim.invoke_command(world.guild.id, world.general.id, world.alice.id, "public-defer-twice")
        await sim.wait_for(lambda: ix.followups)
    assert [m["content"] for m in sim.channel_messages(world.general.id)] == ["first"]
    assert ix.followups[0]["content"] == "second, private" and ix.followups[0]["flags"] & 64
