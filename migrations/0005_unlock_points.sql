-- Each unlock keeps the points it gave, so a member's total is always the sum of their unlocks' points
-- (checkable), and a change of an achievement's points can be applied holder by holder, in chunks that
-- can be re-run: a holder whose unlock already has the new points is done.
ALTER TABLE unlocks ADD COLUMN points INTEGER NOT NULL DEFAULT 0;

UPDATE unlocks SET points = COALESCE(
    (SELECT a.points FROM achievements a
     WHERE a.guild_id = unlocks.guild_id AND a.achievement_id = unlocks.achievement_id), 0);

-- A bulk change of an achievement's holders (its removal, or new points) still to finish. Written in the
-- transaction that changes the achievement, crossed off when the last chunk is done, and resumed at start
-- if the bot stopped in between. `after_member_id` is how far the chunks have got.
CREATE TABLE achievement_jobs (
    guild_id        INTEGER NOT NULL,
    achievement_id  TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('remove', 'repoint')),
    points          INTEGER NOT NULL,
    after_member_id INTEGER NOT NULL DEFAULT 0,
    started_at      TEXT    NOT NULL,
    PRIMARY KEY (guild_id, achievement_id)
) WITHOUT ROWID;
