-- Achievements a moderator revoked from a member: the condition does not give them back; a grant does.
CREATE TABLE revocations (
    guild_id       BIGINT NOT NULL,
    member_id      BIGINT NOT NULL,
    achievement_id TEXT   COLLATE "C" NOT NULL,
    revoked_at     TEXT   COLLATE "C" NOT NULL,
    PRIMARY KEY (guild_id, member_id, achievement_id)
);
