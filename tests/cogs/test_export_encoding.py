"""The data export file: plain when small, gzip-compressed when it would be too big to upload."""

from __future__ import annotations

import csv
import gzip
import io
import json

from cogs.settings import COMPRESS_OVER, encode_export


def member(member_id: int) -> dict[str, object]:
    return {"member_id": member_id, "messages": 3, "reactions_given": 0, "reactions_received": 1, "logins": 1,
            "streak": 1, "best_streak": 1, "points": 10, "achievements": 1, "last_active_date": "2026-01-05",
            "in_guild": True, "custom": {"tasks_completed": 2}, "unlocks": [{"achievement_id": "first-step",
                                                                              "unlocked_at": "2026-01-05"}]}


def test_a_small_export_is_plain_json_with_every_member() -> None:
    payload, name = encode_export({"members": [member(1), member(2)]}, "json", 42)
    assert name == "achievements-42.json"
    assert [m["member_id"] for m in json.loads(payload)["members"]] == [1, 2]


def test_a_csv_export_has_one_row_per_member_with_custom_stats_and_unlocks() -> None:
    payload, name = encode_export({"members": [member(1)]}, "csv", 42)
    rows = list(csv.DictReader(io.StringIO(payload.decode())))
    assert name == "achievements-42.csv"
    assert rows[0]["member_id"] == "1" and rows[0]["unlocks"] == "first-step"
    assert json.loads(rows[0]["custom"]) == {"tasks_completed": 2}


def test_a_large_export_is_gzip_compressed_and_still_complete() -> None:
    members = [member(i) for i in range(COMPRESS_OVER // 300)]
    payload, name = encode_export({"members": members}, "json", 42)
    assert name == "achievements-42.json.gz"
    assert len(payload) < COMPRESS_OVER
    assert len(json.loads(gzip.decompress(payload))["members"]) == len(members)
