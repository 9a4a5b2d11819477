"""Specification of settings: defaults, validation with one clear line, and `python -m bot` without a token."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings

TOKEN = {"DISCORD_TOKEN": "abc.def.ghi"}


def error_for(**env: str) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings({**TOKEN, **env})
    return str(caught.value)


def test_defaults_apply_when_only_the_token_is_set() -> None:
    assert load_settings(TOKEN) == Settings(
        discord_token="abc.def.ghi",
        database_path=Path("data/achievements.db"),
        log_level="INFO",
        dev_guild_id=None,
        discord_api_base=None,
        discord_gateway_url=None,
        privileged_intents=frozenset({"members"}),
    )


def test_a_missing_token_stops_with_one_line_naming_it() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({})

    message = str(caught.value)
    assert "DISCORD_TOKEN" in message
    assert "\n" not in message


def test_a_blank_token_counts_as_missing() -> None:
    with pytest.raises(SettingsError, match="DISCORD_TOKEN"):
        load_settings({"DISCORD_TOKEN": "   "})


def test_the_token_is_not_required_when_the_caller_says_so() -> None:
    assert load_settings({}, require_token=False).discord_token == ""


def test_the_token_is_read_without_surrounding_whitespace() -> None:
    assert load_settings({"DISCORD_TOKEN": "  abc  \n"}).discord_token == "abc"


def test_log_level_is_case_insensitive() -> None:
    assert load_settings({**TOKEN, "LOG_LEVEL": "debug"}).log_level == "DEBUG"


def test_an_unknown_log_level_is_refused() -> None:
    message = error_for(LOG_LEVEL="LOUD")

    assert "LOG_LEVEL" in message and "'LOUD'" in message


def test_dev_guild_id_is_read_as_a_number() -> None:
    assert load_settings({**TOKEN, "DEV_GUILD_ID": "123456789012345678"}).dev_guild_id == 123456789012345678


@pytest.mark.parametrize("value", ["my-server", "-5", "0", "12.5", "1e9"])
def test_a_dev_guild_id_that_is_not_a_guild_id_is_refused(value: str) -> None:
    assert "DEV_GUILD_ID" in error_for(DEV_GUILD_ID=value)


def test_database_path_is_read() -> None:
    assert load_settings({**TOKEN, "DATABASE_PATH": "/var/lib/bot/a.db"}).database_path == Path("/var/lib/bot/a.db")


def test_a_database_path_naming_a_directory_is_refused() -> None:
    assert "DATABASE_PATH" in error_for(DATABASE_PATH="data/")


def test_api_base_and_gateway_urls_are_read_without_a_trailing_slash() -> None:
    settings = load_settings(
        {**TOKEN, "DISCORD_API_BASE": "http://127.0.0.1:8080/api/", "DISCORD_GATEWAY_URL": "wss://gw.example/"}
    )

    assert settings.discord_api_base == "http://127.0.0.1:8080/api"
    assert settings.discord_gateway_url == "wss://gw.example"


@pytest.mark.parametrize("value", ["127.0.0.1:8080", "ftp://example.com", "ws://example.com", "http://", "example"])
def test_an_api_base_that_is_not_an_http_url_is_refused(value: str) -> None:
    assert "DISCORD_API_BASE" in error_for(DISCORD_API_BASE=value)


def test_the_cdn_url_is_read_without_a_trailing_slash_and_is_optional() -> None:
    assert load_settings({**TOKEN, "DISCORD_CDN_URL": "http://127.0.0.1:8765/"}).discord_cdn_url == "http://127.0.0.1:8765"
    assert load_settings(TOKEN).discord_cdn_url is None


@pytest.mark.parametrize("value", ["cdn.discordapp.com", "ws://127.0.0.1:8765", "http://"])
def test_a_cdn_url_that_is_not_an_http_url_is_refused(value: str) -> None:
    assert "DISCORD_CDN_URL" in error_for(DISCORD_CDN_URL=value)


@pytest.mark.parametrize("value", ["https://gateway.discord.gg", "gateway.discord.gg", "ws://"])
def test_a_gateway_url_that_is_not_a_websocket_url_is_refused(value: str) -> None:
    assert "DISCORD_GATEWAY_URL" in error_for(DISCORD_GATEWAY_URL=value)


def test_privileged_intents_are_a_comma_separated_list() -> None:
    settings = load_settings({**TOKEN, "PRIVILEGED_INTENTS": " Members, message_content ,"})

    assert settings.privileged_intents == frozenset({"members", "message_content"})


def test_privileged_intents_none_turns_them_all_off() -> None:
    assert load_settings({**TOKEN, "PRIVILEGED_INTENTS": "none"}).privileged_intents == frozenset()


def test_an_unknown_privileged_intent_is_refused_with_the_valid_ones() -> None:
    message = error_for(PRIVILEGED_INTENTS="members,typing")

    assert "typing" in message
    assert "message_content" in message


@pytest.mark.parametrize(
    "env",
    [
        {"LOG_LEVEL": "LOUD"},
        {"DEV_GUILD_ID": "x"},
        {"DATABASE_PATH": "data/"},
        {"DISCORD_API_BASE": "nope"},
        {"DISCORD_GATEWAY_URL": "nope"},
        {"PRIVILEGED_INTENTS": "typing"},
    ],
    ids=lambda env: next(iter(env)),
)
def test_every_settings_error_is_one_line(env: dict[str, str]) -> None:
    assert "\n" not in error_for(**env)


def run_bot(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_running_the_bot_without_a_token_prints_one_line_and_fails(tmp_path: Path) -> None:
    result = run_bot(tmp_path, {"DISCORD_TOKEN": "", "PATH": os.environ.get("PATH", "")})

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "DISCORD_TOKEN" in result.stderr
    assert result.stdout == ""


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DISCORD_TOKEN=abc\nLOG_LEVEL=LOUD\n", encoding="utf-8")

    result = run_bot(tmp_path, {"PATH": os.environ.get("PATH", "")})

    assert "LOG_LEVEL" in result.stderr


PG = {"DATABASE_URL": "postgresql://bot:secret@127.0.0.1:5432/achievements"}


def test_sharding_and_postgresql_are_off_by_default() -> None:
    settings = load_settings(TOKEN)

    assert (settings.database_url, settings.shard_count, settings.shard_ids, settings.shard_wait) == (
        None, None, None, False
    )


def test_a_postgresql_database_url_is_read() -> None:
    assert load_settings({**TOKEN, **PG}).database_url == PG["DATABASE_URL"]


@pytest.mark.parametrize(
    "value",
    ["mysql://bot@db/achievements", "postgresql://db:5432", "postgresql://bot@db:port/achievements",
     "postgresql:///achievements", "data/achievements.db"],
)
def test_a_database_url_that_is_not_a_postgresql_url_naming_a_database_is_refused(value: str) -> None:
    assert "DATABASE_URL" in error_for(DATABASE_URL=value)


def test_a_database_url_error_does_not_show_the_password() -> None:
    message = error_for(DATABASE_URL="postgresql://bot:hunter2@db:5432/")

    assert "hunter2" not in message and "DATABASE_URL" in message


def test_a_database_url_may_name_a_unix_socket_folder_as_host() -> None:
    url = "postgresql://bot@/achievements?host=/var/run/postgresql"

    assert load_settings({**TOKEN, "DATABASE_URL": url}).database_url == url


def test_a_shard_count_alone_runs_every_shard_in_this_process_even_on_sqlite() -> None:
    settings = load_settings({**TOKEN, "SHARD_COUNT": "4"})

    assert (settings.shard_count, settings.shard_ids, settings.runs_every_shard) == (4, None, True)


@pytest.mark.parametrize(
    ("value", "ids"),
    [("0,1", (0, 1)), ("0-3", (0, 1, 2, 3)), (" 5, 0-2 ,7 ", (0, 1, 2, 5, 7)), ("3", (3,)), ("4-4", (4,))],
)
def test_shard_ids_are_a_list_a_range_or_both(value: str, ids: tuple[int, ...]) -> None:
    assert load_settings({**TOKEN, **PG, "SHARD_COUNT": "8", "SHARD_IDS": value}).shard_ids == ids


def test_shard_ids_naming_every_shard_are_allowed_on_sqlite() -> None:
    settings = load_settings({**TOKEN, "SHARD_COUNT": "2", "SHARD_IDS": "0-1"})

    assert settings.shard_ids == (0, 1) and settings.runs_every_shard


def test_shard_ids_naming_some_shards_are_refused_on_sqlite_with_what_to_set() -> None:
    message = error_for(SHARD_COUNT="2", SHARD_IDS="0")

    assert "SHARD_IDS" in message and "DATABASE_URL" in message and "postgresql" in message


def test_shard_ids_naming_some_shards_are_allowed_with_postgresql() -> None:
    settings = load_settings({**TOKEN, **PG, "SHARD_COUNT": "2", "SHARD_IDS": "1"})

    assert (settings.shard_count, settings.shard_ids, settings.runs_every_shard) == (2, (1,), False)


def test_a_shard_id_not_below_the_shard_count_is_refused_with_the_valid_numbers() -> None:
    message = error_for(**PG, SHARD_COUNT="2", SHARD_IDS="0,2")

    assert "shard 2" in message and "0 to 1" in message


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "2,3"])
def test_a_shard_count_that_is_not_one_or_more_is_refused(value: str) -> None:
    assert "SHARD_COUNT" in error_for(SHARD_COUNT=value)


@pytest.mark.parametrize("value", ["zero", "0,,1", "1-", "-1", "0;1", "a-b", "0-1-2"])
def test_shard_ids_that_are_not_numbers_or_ranges_are_refused(value: str) -> None:
    assert "SHARD_IDS" in error_for(**PG, SHARD_COUNT="4", SHARD_IDS=value)


def test_a_backwards_shard_range_is_refused() -> None:
    assert "backwards" in error_for(**PG, SHARD_COUNT="4", SHARD_IDS="3-1")


def test_a_shard_named_twice_is_refused() -> None:
    assert "twice" in error_for(**PG, SHARD_COUNT="4", SHARD_IDS="0-2,1")


def test_shard_ids_without_a_shard_count_are_refused() -> None:
    message = error_for(**PG, SHARD_IDS="0")

    assert "SHARD_COUNT" in message


@pytest.mark.parametrize(("value", "wait"), [("1", True), ("true", True), ("0", False), ("no", False)])
def test_shard_wait_is_a_yes_or_no(value: str, wait: bool) -> None:
    assert load_settings({**TOKEN, "SHARD_WAIT": value}).shard_wait is wait


def test_a_shard_wait_that_is_not_yes_or_no_is_refused() -> None:
    assert "SHARD_WAIT" in error_for(SHARD_WAIT="forever")


@pytest.mark.parametrize(
    "env",
    [
        {"DATABASE_URL": "mysql://x/y"},
        {"SHARD_COUNT": "0"},
        {"SHARD_COUNT": "2", "SHARD_IDS": "0"},
        {"SHARD_COUNT": "2", "SHARD_IDS": "5", **PG},
        {"SHARD_IDS": "0"},
        {"SHARD_WAIT": "maybe"},
    ],
    ids=lambda env: ",".join(env),
)
def test_every_sharding_error_is_one_line(env: dict[str, str]) -> None:
    assert "\n" not in error_for(**env)


def test_running_the_bot_with_a_subset_of_shards_on_sqlite_prints_one_line_and_fails(tmp_path: Path) -> None:
    result = run_bot(tmp_path, {"DISCORD_TOKEN": "abc", "SHARD_COUNT": "2", "SHARD_IDS": "1",
                                "PATH": os.environ.get("PATH", "")})

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "SHARD_IDS" in result.stderr
