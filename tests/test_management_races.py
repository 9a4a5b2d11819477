"""Moderators changing one achievement at once, and bulk changes of large guilds: totals always equal the
stored points of what members hold, a removal is final, and other guilds keep committing meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.errors import UserFacingError
from tests.management_support import (
    GUILD,
    MODERATOR,
    OTHER_GUILD,
    Bot,
    members_who_said_something,
    open_bot,
    stored_points,
    totals_not_matching_stored_points,
)
from tests.support.backends import Backend

HOLDERS = 3000


@pytest.fixture
async def bot(backend: Backend) -> AsyncIterator[Bot]:
    opened = await open_bot(await backend.target(), bulk_chunk=500)
    await members_who_said_something(opened, HOLDERS)
    yield opened
    await opened.close()


async def test_two_moderators_changing_the_points_at_once_leave_totals_equal_to_the_stored_points(bot: Bot) -> None:
    edits = [bot.management.edit_achievement(GUILD, MODERATOR, "first-step", points=p) for p in (20, 30)]
    await asyncio.gather(*edits)

    assert await stored_points(bot.storage, "first-step") in (20, 30)
    assert await totals_not_matching_stored_points(bot.storage) == []


async def test_a_rename_racing_a_points_change_keeps_both_changes(bot: Bot) -> None:
    await asyncio.gather(
        bot.management.edit_achievement(GUILD, MODERATOR, "first-step", name="First Words"),
        bot.management.edit_achievement(GUILD, MODERATOR, "first-step", points=50),
    )

    stored = await bot.storage.achievements.get(GUILD, "first-step")
    assert stored is not None and (stored.name, stored.points) == ("First Words", 50)
    assert await totals_not_matching_stored_points(bot.storage) == []


async def test_an_edit_racing_a_removal_fails_and_the_achievement_stays_removed(bot: Bot) -> None:
    edit, removal = await asyncio.gather(
        bot.management.edit_achievement(GUILD, MODERATOR, "first-step", points=20),
        bot.management.remove_achievement(GUILD, MODERATOR, "first-step"),
        return_exceptions=True,
    )

    assert removal == HOLDERS
    assert isinstance(edit, UserFacingError) and "no achievement `first-step`" in str(edit)
    assert await bot.storage.achievements.get(GUILD, "first-step") is None
    assert await bot.storage.members.holders(GUILD, "first-step") == 0
    assert await totals_not_matching_stored_points(bot.storage) == []


async def test_an_edit_of_an_achievement_removed_before_it_applied_says_it_is_gone(bot: Bot) -> None:
    original = bot.storage.members.load_chunk
    previewing, removed = asyncio.Event(), asyncio.Event()

    async def preview_then_wait(*args: object, **kwargs: object) -> object:
        previewing.set()
        await removed.wait()  # another moderator removes it while this edit previews
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    bot.storage.members.load_chunk = preview_then_wait  # type: ignore[method-assign]
    edit = asyncio.create_task(bot.management.edit_achievement(GUILD, MODERATOR, "first-step", points=20))
    await previewing.wait()
    bot.storage.members.load_chunk = original  # type: ignore[method-assign]
    await bot.management.remove_achievement(GUILD, MODERATOR, "first-step")
    removed.set()

    with pytest.raises(UserFacingError, match="no achievement `first-step` any more"):
        await edit
    assert await bot.storage.achievements.get(GUILD, "first-step") is None
    await bot.recorder.record(bot.message(1))  # a holder's next message does not earn it again
    await bot.recorder.flush()
    assert await bot.storage.members.holders(GUILD, "first-step") == 0


async def test_a_points_change_of_many_holders_lets_other_guilds_commit_between_chunks(bot: Bot) -> None:
    await bot.recorder.guild(OTHER_GUILD)
    chunks_before_other_commit: list[int] = []
    chunks = 0
    original = bot.storage.achievements.run_job_chunk

    async def counted(*args: object, **kwargs: object) -> int | None:
        nonlocal chunks
        chunks += 1
        if chunks == 1:
            asyncio.get_running_loop().create_task(other_guild_writes())
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    async def other_guild_writes() -> None:
        await bot.recorder.record(bot.message(1, OTHER_GUILD))
        await bot.recorder.flush()
        chunks_before_other_commit.append(chunks)

    bot.storage.achievements.run_job_chunk = counted  # type: ignore[method-assign]
    await bot.management.edit_achievement(GUILD, MODERATOR, "first-step", points=25)

    assert chunks >= HOLDERS // 500
    assert chunks_before_other_commit and chunks_before_other_commit[0] < chunks
    assert await totals_not_matching_stored_points(bot.storage) == []


async def test_a_removal_cut_off_between_chunks_is_finished_at_the_next_start(bot: Bot) -> None:
    original = bot.storage.achievements.run_job_chunk
    chunks = 0

    async def crash_on_the_third_chunk(*args: object, **kwargs: object) -> int | None:
        nonlocal chunks
        chunks += 1
        if chunks == 3:
            raise SystemExit("killed")  # the process dies between two committed chunks
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    bot.storage.achievements.run_job_chunk = crash_on_the_third_chunk  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        await bot.management.remove_achievement(GUILD, MODERATOR, "first-step")
    assert 0 < await bot.storage.members.holders(GUILD, "first-step") < HOLDERS  # half done, as after kill -9
    await bot.close()

    restarted = await open_bot(bot.path, bulk_chunk=500)
    try:
        assert await restarted.management.resume_bulk_jobs() == 1
        assert await restarted.storage.achievements.get(GUILD, "first-step") is None
        assert await restarted.storage.members.holders(GUILD, "first-step") == 0
        assert await totals_not_matching_stored_points(restarted.storage) == []
        assert await restarted.management.resume_bulk_jobs() == 0
    finally:
        await restarted.close()


async def test_a_points_change_cut_off_between_chunks_is_finished_at_the_next_start(bot: Bot) -> None:
    original = bot.storage.achievements.run_job_chunk
    chunks = 0

    async def crash_on_the_fourth_chunk(*args: object, **kwargs: object) -> int | None:
        nonlocal chunks
        chunks += 1
        if chunks == 4:
            raise SystemExit("killed")
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    bot.storage.achievements.run_job_chunk = crash_on_the_fourth_chunk  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        await bot.management.edit_achievement(GUILD, MODERATOR, "first-step", points=25)
    await bot.close()

    restarted = await open_bot(bot.path, bulk_chunk=500)
    try:
        await restarted.management.resume_bulk_jobs()
        assert await stored_points(restarted.storage, "first-step") == 25
        assert await totals_not_matching_stored_points(restarted.storage) == []
        stats, _ = await restarted.storage.members.load(GUILD, HOLDERS)
        assert stats.get("points") == 25
    finally:
        await restarted.close()


async def test_activity_during_a_bulk_change_waits_and_is_counted_after_it(bot: Bot) -> None:
    original = bot.storage.achievements.run_job_chunk
    during: list[asyncio.Task[object]] = []

    async def chunk_with_activity(*args: object, **kwargs: object) -> int | None:
        if not during:
            during.append(asyncio.get_running_loop().create_task(bot.recorder.record(bot.message(1))))
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    bot.storage.achievements.run_job_chunk = chunk_with_activity  # type: ignore[method-assign]
    await bot.management.edit_achievement(GUILD, MODERATOR, "first-step", points=25)
    await during[0]
    await bot.recorder.flush()

    stats, _ = await bot.storage.members.load(GUILD, 1)
    assert (stats.get("messages"), stats.get("points")) == (2, 25)
    assert await totals_not_matching_stored_points(bot.storage) == []
