-- Achievements a moderator revoked from a member: the condition does not give them back; a grant does.
CREATE TABLE revocations (
    guild_id       INTEGER NOT NULL,
    member_id      INTEGER NOT NULL,
    achievement_id TEXT    NOT NULL,
    revoked_at     TEXT    NOT NULL,
    PRIMARY KEY (guild_id, member_id, achievement_id)
) WITHOUT ROWID;
