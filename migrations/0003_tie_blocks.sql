-- Members tied on points are ordered by (member_id % 1024, member_id): an arbitrary but stable order
-- that splits a large tie into 1024 blocks whose sizes are kept here, so that finding a member's
-- position in a tie (or a page deep inside one) reads one block instead of the whole tie.

CREATE TABLE tie_blocks (
    guild_id INTEGER NOT NULL,
    points   INTEGER NOT NULL,
    block    INTEGER NOT NULL,  -- member_id % 1024
    members  INTEGER NOT NULL,
    PRIMARY KEY (guild_id, points, block)
) WITHOUT ROWID;

INSERT INTO tie_blocks (guild_id, points, block, members)
SELECT guild_id, points, member_id % 1024, COUNT(*) FROM member_stats WHERE in_guild = 1
GROUP BY guild_id, points, member_id % 1024;

DROP INDEX member_stats_by_points;
CREATE INDEX member_stats_leaderboard ON member_stats (guild_id, in_guild, points DESC, member_id % 1024, member_id);

CREATE TRIGGER member_stats_tie_blocks_insert AFTER INSERT ON member_stats WHEN new.in_guild = 1
BEGIN
    INSERT INTO tie_blocks (guild_id, points, block, members) VALUES (new.guild_id, new.points, new.member_id % 1024, 1)
    ON CONFLICT (guild_id, points, block) DO UPDATE SET members = members + 1;
END;

CREATE TRIGGER member_stats_tie_blocks_delete AFTER DELETE ON member_stats WHEN old.in_guild = 1
BEGIN
    UPDATE tie_blocks SET members = members - 1
    WHERE guild_id = old.guild_id AND points = old.points AND block = old.member_id % 1024;
END;

CREATE TRIGGER member_stats_tie_blocks_update AFTER UPDATE OF points, in_guild ON member_stats
WHEN old.points IS NOT new.points OR old.in_guild IS NOT new.in_guild
BEGIN
    UPDATE tie_blocks SET members = members - 1
    WHERE old.in_guild = 1 AND guild_id = old.guild_id AND points = old.points AND block = old.member_id % 1024;
    INSERT INTO tie_blocks (guild_id, points, block, members)
    SELECT new.guild_id, new.points, new.member_id % 1024, 1 WHERE new.in_guild = 1
    ON CONFLICT (guild_id, points, block) DO UPDATE SET members = members + 1;
END;
