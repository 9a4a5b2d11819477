"""The data export file, streamed page by page: plain when small, gzip-compressed when it would be too big to
upload as it is, refused as soon as it outgrows the upload limit, and never left behind on disk."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.export import COMPRESS_OVER, ExportFile, ExportTooLarge, write_export

HEADER = {"guild_id": 42, "settings": {"timezone": "Europe/Paris"}, "tiers": [], "achievements": []}


def member(member_id: int, name: str = "first-step") -> dict[str, Any]:
    return {"member_id": member_id, "messages": 3, "reactions_given": 0, "reactions_received": 1, "logins": 1,
            "streak": 1, "best_streak": 1, "points": 10, "achievements": 1, "last_active_date": "2026-01-05",
            "in_guild": True, "custom": {"tasks_completed": 2},
            "unlocks": [{"achievement_id": name, "unlocked_at": "2026-01-05"}]}


async def pages_of(members: list[dict[str, Any]], size: int) -> AsyncIterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(members), size):
        yield members[start:start + size]


def content(export: ExportFile) -> bytes:
    data = export.path.read_bytes()
    return gzip.decompress(data) if export.filename.endswith(".gz") else data


async def test_a_small_export_is_plain_json_with_the_header_and_every_member_in_order() -> None:
    members = [member(i) for i in range(1, 8)]
    export = await write_export(HEADER, pages_of(members, 3), "json", 42)

    document = json.loads(export.path.read_bytes())
    assert export.filename == "achievements-42.json"
    assert export.members == 7
    assert document["settings"] == {"timezone": "Europe/Paris"}
    assert document["members"] == members
    export.discard()


async def test_an_export_of_a_guild_without_members_is_valid_json() -> None:
    export = await write_export(HEADER, pages_of([], 3), "json", 42)

    assert json.loads(export.path.read_bytes())["members"] == []
    assert export.members == 0
    export.discard()


async def test_a_csv_export_has_one_row_per_member_with_custom_stats_and_unlocks() -> None:
    export = await write_export(HEADER, pages_of([member(1), member(2, "chatterbox")], 1), "csv", 42)

    rows = list(csv.DictReader(io.StringIO(export.path.read_text(encoding="utf-8"))))
    assert export.filename == "achievements-42.csv"
    assert [(r["member_id"], r["unlocks"]) for r in rows] == [("1", "first-step"), ("2", "chatterbox")]
    assert json.loads(rows[0]["custom"]) == {"tasks_completed": 2}
    export.discard()


async def test_a_large_export_is_gzip_compressed_and_still_complete() -> None:
    members = [member(i) for i in range(COMPRESS_OVER // 300)]
    export = await write_export(HEADER, pages_of(members, 2000), "json", 42)

    assert export.filename == "achievements-42.json.gz"
    assert export.size < COMPRESS_OVER
    assert json.loads(content(export))["members"] == members
    export.discard()


async def test_an_export_over_the_upload_limit_is_refused_and_leaves_no_file() -> None:
    rng = random.Random(1)  # random names compress poorly: 14 MB of JSON stay over 1 MiB in gzip
    members = [member(i, rng.randbytes(64).hex()) for i in range(COMPRESS_OVER // 300)]
    guild_id = 987654321  # names this test's temporary files
    leftovers = Path(tempfile.gettempdir()).glob

    with pytest.raises(ExportTooLarge, match="over Discord's 1 MiB upload limit"):
        await write_export(HEADER, pages_of(members, 2000), "json", guild_id, upload_limit=2**20)

    assert list(leftovers(f"export-*achievements-{guild_id}*")) == []
