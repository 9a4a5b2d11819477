"""Specification of guild ownership: Discord's shard formula decides which process owns a guild."""

from __future__ import annotations

import pytest

from bot.ownership import Ownership, shard_of

# Snowflakes whose timestamp part (id >> 22) is 1000, 1001, 1002, 1003.
GUILDS = [(1000 + n) << 22 | 12345 for n in range(4)]


def test_a_guilds_shard_is_discords_formula() -> None:
    assert [shard_of(g, 2) for g in GUILDS] == [0, 1, 0, 1]
    assert [shard_of(g, 3) for g in GUILDS] == [1, 2, 0, 1]


def test_a_process_owns_exactly_the_guilds_on_its_shards() -> None:
    first, second = Ownership(2, [0]), Ownership(2, [1])

    assert [first.owns(g) for g in GUILDS] == [True, False, True, False]
    assert [second.owns(g) for g in GUILDS] == [False, True, False, True]


def test_a_single_process_owns_every_guild() -> None:
    assert all(Ownership.everything().owns(g) for g in GUILDS)
    assert all(Ownership(4).owns(g) for g in GUILDS)


def test_naming_every_shard_owns_every_guild() -> None:
    ownership = Ownership(2, [1, 0])

    assert ownership.owns_everything and all(ownership.owns(g) for g in GUILDS)


def test_a_process_that_gave_up_its_shards_owns_nothing() -> None:
    for ownership in (Ownership(2, [0]), Ownership.everything()):
        ownership.give_up()

        assert not any(ownership.owns(g) for g in GUILDS)
        assert not ownership.owns_everything


def test_shard_ids_without_a_count_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="shard count"):
        Ownership(None, [0])
