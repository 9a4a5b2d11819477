-- Each unlock keeps the points it gave, and bulk changes of an achievement's holders are resumable jobs;
-- see ../0005_unlock_points.sql.
ALTER TABLE unlocks ADD COLUMN points INTEGER NOT NULL DEFAULT 0;

UPDATE unlocks SET points = COALESCE(
    (SELECT a.points FROM achievements a
     WHERE a.guild_id = unlocks.guild_id AND a.achievement_id = unlocks.achievement_id), 0);

CREATE TABLE achievement_jobs (
    guild_id        BIGINT  NOT NULL,
    achievement_id  TEXT    COLLATE "C" NOT NULL,
    kind            TEXT    COLLATE "C" NOT NULL CHECK (kind IN ('remove', 'repoint')),
    points          INTEGER NOT NULL,
    after_member_id BIGINT  NOT NULL DEFAULT 0,
    started_at      TEXT    COLLATE "C" NOT NULL,
    PRIMARY KEY (guild_id, achievement_id)
);
