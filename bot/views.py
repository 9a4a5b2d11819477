"""Interactive views: a paginator only its invoker can press, and a confirmation prompt."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.errors import UNEXPECTED, UserFacingError, tell_privately

log = logging.getLogger(__name__)

PageSource = Callable[[int], Awaitable[tuple[discord.Embed, int]]]  # page index -> (embed, page count)


class OwnedView(discord.ui.View):
    """A view whose buttons answer only the member who ran the command, and that disables itself on timeout."""

    default_timeout = 180.0  # seconds without a press before the buttons are disabled

    def __init__(self, owner_id: int, *, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout if timeout is not None else type(self).default_timeout)
        self.owner_id = owner_id
        self.message: discord.InteractionMessage | discord.Message | None = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(
            f"These buttons belong to <@{self.owner_id}>; run the command yourself to get your own.",
            ephemeral=True, allowed_mentions=discord.AllowedMentions.none(),
        )
        return False

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]) -> None:
        if isinstance(error, UserFacingError):
            message = f"❌ {error}"
        else:
            log.error("view %s failed", type(self).__name__, exc_info=error)
            message = UNEXPECTED
        await tell_privately(interaction, message)

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.message is not None:
            try:
                await self.message.edit(view=self)
            except discord.HTTPException:
                log.debug("could not disable an expired view", exc_info=True)


class Paginator(OwnedView):
    def __init__(self, owner_id: int, source: PageSource, page: int, pages: int, *,
                 my_page: int | Callable[[], Awaitable[int]] | None = None, timeout: float | None = None) -> None:
        super().__init__(owner_id, timeout=timeout)
        self.source = source
        self.page = page
        self.pages = pages
        self.my_page = my_page
        if my_page is None:
            self.remove_item(self.jump_to_me)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.first.disabled = self.previous.disabled = self.page <= 0
        self.next.disabled = self.last.disabled = self.page >= self.pages - 1
        self.counter.label = f"{self.page + 1}/{self.pages}"

    async def show(self, interaction: discord.Interaction, page: int) -> None:
        embed, self.pages = await self.source(max(0, min(page, self.pages - 1)))
        self.page = max(0, min(page, self.pages - 1))
        self._update_buttons()
        await interaction.response.edit_message(embed=embed, view=self)

    @discord.ui.button(emoji="⏮️", style=discord.ButtonStyle.secondary, custom_id="pager:first")
    async def first(self, interaction: discord.Interaction, _button: discord.ui.Button[Paginator]) -> None:
        await self.show(interaction, 0)

    @discord.ui.button(emoji="◀️", style=discord.ButtonStyle.secondary, custom_id="pager:previous")
    async def previous(self, interaction: discord.Interaction, _button: discord.ui.Button[Paginator]) -> None:
        await self.show(interaction, self.page - 1)

    @discord.ui.button(label="1/1", style=discord.ButtonStyle.secondary, disabled=True, custom_id="pager:counter")
    async def counter(self, interaction: discord.Interaction, _button: discord.ui.Button[Paginator]) -> None:
        await interaction.response.defer()

    @discord.ui.button(emoji="▶️", style=discord.ButtonStyle.secondary, custom_id="pager:next")
    async def next(self, interaction: discord.Interaction, _button: discord.ui.Button[Paginator]) -> None:
        await self.show(interaction, self.page + 1)

    @discord.ui.button(emoji="⏭️", style=discord.ButtonStyle.secondary, custom_id="pager:last")
    async def last(self, interaction: discord.Interaction, _button: discord.ui.Button[Paginator]) -> None:
        await self.show(interaction, self.pages - 1)

    @discord.ui.button(label="Jump to me", emoji="📍", style=discord.ButtonStyle.primary, custom_id="pager:me")
    async def jump_to_me(self, interaction: discord.Interaction, _button: discord.ui.Button[Paginator]) -> None:
        page = self.my_page if isinstance(self.my_page, int) or self.my_page is None else await self.my_page()
        await self.show(interaction, page or 0)


class Confirm(OwnedView):
    """Two buttons; `on_confirm` runs once, on Confirm, and returns the text shown instead of the prompt."""

    default_timeout = 60.0

    def __init__(self, owner_id: int, on_confirm: Callable[[], Awaitable[str]], *,
                 timeout: float | None = None) -> None:
        super().__init__(owner_id, timeout=timeout)
        self.on_confirm = on_confirm
        self.done = False

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.danger, custom_id="confirm:yes")
    async def confirm(self, interaction: discord.Interaction, _button: discord.ui.Button[Confirm]) -> None:
        if self.done:
            return
        self.done = True
        self.stop()
        await interaction.response.defer()
        text = await self.on_confirm()
        await interaction.edit_original_response(content=text, embed=None, view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary, custom_id="confirm:no")
    async def cancel(self, interaction: discord.Interaction, _button: discord.ui.Button[Confirm]) -> None:
        self.done = True
        self.stop()
        await interaction.response.edit_message(content="Cancelled: nothing was changed.", embed=None, view=None)
