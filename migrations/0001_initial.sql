-- Initial schema. Every table is keyed by guild id first: no guild sees another's rows.
-- Times are ISO-8601 UTC strings; local dates are ISO dates in the guild's timezone.

CREATE TABLE guild_settings (
    guild_id             INTEGER PRIMARY KEY,
    timezone             TEXT    NOT NULL DEFAULT 'UTC',
    announce_channel_id  INTEGER,
    anti_spam_cooldown   INTEGER NOT NULL DEFAULT 0,   -- seconds between counted messages; 0 = off
    anti_spam_min_length INTEGER NOT NULL DEFAULT 0,   -- characters; 0 = off
    cards_enabled        INTEGER NOT NULL DEFAULT 1,
    last_rollover_date   TEXT,                         -- the last local date closed by a rollover
    created_at           TEXT    NOT NULL
);

CREATE TABLE achievements (
    guild_id       INTEGER NOT NULL,
    achievement_id TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    description    TEXT    NOT NULL,
    points         INTEGER NOT NULL CHECK (points BETWEEN 1 AND 10000),
    condition      TEXT    NOT NULL,
    hidden         INTEGER NOT NULL DEFAULT 0,
    starts_at      TEXT,
    ends_at        TEXT,
    role_id        INTEGER,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    PRIMARY KEY (guild_id, achievement_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX achievements_by_name ON achievements (guild_id, name COLLATE NOCASE);

CREATE TABLE member_stats (
    guild_id           INTEGER NOT NULL,
    member_id          INTEGER NOT NULL,
    messages           INTEGER NOT NULL DEFAULT 0,
    reactions_given    INTEGER NOT NULL DEFAULT 0,
    reactions_received INTEGER NOT NULL DEFAULT 0,
    logins             INTEGER NOT NULL DEFAULT 0,
    streak             INTEGER NOT NULL DEFAULT 0,
    best_streak        INTEGER NOT NULL DEFAULT 0,
    points             INTEGER NOT NULL DEFAULT 0,
    achievements       INTEGER NOT NULL DEFAULT 0,
    last_active_date   TEXT,
    in_guild           INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (guild_id, member_id)
) WITHOUT ROWID;
CREATE INDEX member_stats_by_points ON member_stats (guild_id, in_guild, points DESC, member_id);
CREATE INDEX member_stats_by_last_active ON member_stats (guild_id, last_active_date) WHERE streak > 0;

CREATE TABLE custom_stats (
    guild_id  INTEGER NOT NULL,
    member_id INTEGER NOT NULL,
    stat      TEXT    NOT NULL,
    value     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (guild_id, member_id, stat)
) WITHOUT ROWID;

CREATE TABLE unlocks (
    guild_id       INTEGER NOT NULL,
    member_id      INTEGER NOT NULL,
    achievement_id TEXT    NOT NULL,
    unlocked_at    TEXT    NOT NULL,
    PRIMARY KEY (guild_id, member_id, achievement_id)
) WITHOUT ROWID;
CREATE INDEX unlocks_by_achievement ON unlocks (guild_id, achievement_id);

CREATE TABLE tiers (
    guild_id INTEGER NOT NULL,
    points   INTEGER NOT NULL CHECK (points >= 0),
    name     TEXT    NOT NULL,
    badge    TEXT    NOT NULL,
    role_id  INTEGER,
    PRIMARY KEY (guild_id, points)
) WITHOUT ROWID;
CREATE UNIQUE INDEX tiers_by_name ON tiers (guild_id, name COLLATE NOCASE);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id   INTEGER NOT NULL,
    actor_id   INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);
CREATE INDEX audit_log_by_guild ON audit_log (guild_id, id DESC);

-- Announcements to post, written in the same transaction as the unlock that caused them.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id        INTEGER NOT NULL,
    member_id       INTEGER NOT NULL,
    kind            TEXT    NOT NULL,             -- 'unlock' | 'tier'
    channel_id      INTEGER,                      -- where the activity happened, if anywhere
    payload         TEXT    NOT NULL,             -- JSON
    created_at      TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',  -- 'pending' | 'sent' | 'failed'
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (state, next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_by_guild ON outbox (guild_id, id);

-- Process-wide facts such as the hash of the last synced command tree (not guild data).
CREATE TABLE bot_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
