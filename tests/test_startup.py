"""Specification of start-up with a database that cannot be used: `python -m bot` stops with one `error:` line.

Each case runs the real entry point in a subprocess, the way an operator starts the bot. Discord is pointed at
a closed loopback port, so a bot that wrongly got past the database stops with a different error (and never
sends traffic anywhere but 127.0.0.1).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.dataset import build

NOBODY = 65534


def start_bot(database: Path, *, unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DISCORD_TOKEN": "abc.def.ghi",
        "DATABASE_PATH": str(database),
        "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10",
        "DISCORD_GATEWAY_URL": "ws://127.0.0.1:9/",
    }
    command = [sys.executable, "-m", "bot"]
    if unprivileged and os.geteuid() == 0:
        # Root ignores file permissions, so a read-only file is only read-only to another user: run the bot
        # as `nobody`, as it would run under a service account. (setpriv, not subprocess's user=: on this
        # machine the interpreter is reachable only through setpriv's exec.)
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot make a file read-only to the bot")
        command = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    return subprocess.run(command, cwd="/", env=env, capture_output=True, text=True, timeout=60, check=False)


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """One `error:` line and nothing else on stderr, exit code 2; returns the line."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert result.returncode == 2
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def folder() -> Iterator[Path]:
    """A temporary folder that another user (the unprivileged bot) may enter; pytest's tmp_path is private."""
    path = Path(tempfile.mkdtemp(prefix="startup-"))
    path.chmod(0o777)
    yield path
    for sub in (path, *path.rglob("*")):
        if sub.is_dir():
            sub.chmod(0o777)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def good_database(folder: Path) -> Path:
    """A real database of the bot with 3,000 members, closed (its WAL checkpointed into the file)."""
    path = folder / "achievements.db"
    await build(path, 3000)
    path.chmod(0o666)
    return path


def test_random_bytes_are_refused_as_not_a_database(folder: Path) -> None:
    path = folder / "achievements.db"
    path.write_bytes(os.urandom(64 * 1024))

    line = assert_refused(start_bot(path), "not a SQLite database", "DATABASE_PATH")
    assert str(path) in line


def test_a_text_file_is_refused_as_not_a_database(folder: Path) -> None:
    path = folder / "achievements.db"
    path.write_text("DISCORD_TOKEN=abc\nthis is not a database\n", encoding="utf-8")

    assert_refused(start_bot(path), "not a SQLite database", "DATABASE_PATH")


def test_a_truncated_database_is_refused_as_damaged(good_database: Path) -> None:
    with good_database.open("r+b") as file:
        file.truncate(good_database.stat().st_size // 3)

    assert_refused(start_bot(good_database), "damaged", "backup")


def test_a_database_with_a_bad_header_is_refused(good_database: Path) -> None:
    with good_database.open("r+b") as file:
        file.write(b"NOT A SQLITE HEADER!")

    assert_refused(start_bot(good_database), "not a SQLite database")


def test_a_database_with_16_kib_corrupted_in_the_middle_is_refused_as_damaged(good_database: Path) -> None:
    size = good_database.stat().st_size
    with good_database.open("r+b") as file:
        file.seek(size // 2 // 4096 * 4096)
        file.write(os.urandom(16 * 1024))

    assert_refused(start_bot(good_database), "damaged", "backup")


def test_a_directory_is_refused_without_a_stray_event_loop_error(folder: Path) -> None:
    path = folder / "achievements.db"
    path.mkdir()

    result = start_bot(path)

    assert "Event loop is closed" not in result.stderr
    assert_refused(result, "is a folder", "DATABASE_PATH")


def test_a_read_only_database_file_is_refused(good_database: Path) -> None:
    good_database.chmod(0o444)

    assert_refused(start_bot(good_database, unprivileged=True), "read-only", "writ")


def test_a_database_in_a_read_only_folder_is_refused(good_database: Path) -> None:
    good_database.parent.chmod(0o555)

    assert_refused(start_bot(good_database, unprivileged=True), "read-only", "folder")


def test_a_new_database_in_a_read_only_folder_is_refused(folder: Path) -> None:
    folder.chmod(0o555)

    assert_refused(start_bot(folder / "achievements.db", unprivileged=True), "cannot create", "folder")


def test_a_database_another_process_is_writing_to_is_refused_as_locked(good_database: Path) -> None:
    other = sqlite3.connect(good_database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another program holding a write transaction past busy_timeout
        result = start_bot(good_database)
    finally:
        other.close()

    assert_refused(result, "locked by another process", "stop")


def test_a_database_another_process_holds_exclusively_is_refused_as_locked(good_database: Path) -> None:
    other = sqlite3.connect(good_database, isolation_level=None)
    try:
        other.execute("PRAGMA locking_mode = EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("SELECT COUNT(*) FROM member_stats").fetchone()
        result = start_bot(good_database)
    finally:
        other.close()

    assert_refused(result, "locked by another process")
