-- How many ranked members (still in the guild) have each points value. Rank = 1 + members with more
-- points, and the member count, become sums over the distinct points values instead of counts over
-- every member. Triggers keep it right whatever writes member_stats (upserts, bulk changes, deletes).

CREATE TABLE points_histogram (
    guild_id INTEGER NOT NULL,
    points   INTEGER NOT NULL,
    members  INTEGER NOT NULL,
    PRIMARY KEY (guild_id, points)
) WITHOUT ROWID;

INSERT INTO points_histogram (guild_id, points, members)
SELECT guild_id, points, COUNT(*) FROM member_stats WHERE in_guild = 1 GROUP BY guild_id, points;

CREATE TRIGGER member_stats_histogram_insert AFTER INSERT ON member_stats WHEN new.in_guild = 1
BEGIN
    INSERT INTO points_histogram (guild_id, points, members) VALUES (new.guild_id, new.points, 1)
    ON CONFLICT (guild_id, points) DO UPDATE SET members = members + 1;
END;

CREATE TRIGGER member_stats_histogram_delete AFTER DELETE ON member_stats WHEN old.in_guild = 1
BEGIN
    UPDATE points_histogram SET members = members - 1 WHERE guild_id = old.guild_id AND points = old.points;
END;

CREATE TRIGGER member_stats_histogram_update AFTER UPDATE OF points, in_guild ON member_stats
WHEN old.points IS NOT new.points OR old.in_guild IS NOT new.in_guild
BEGIN
    UPDATE points_histogram SET members = members - 1
    WHERE old.in_guild = 1 AND guild_id = old.guild_id AND points = old.points;
    INSERT INTO points_histogram (guild_id, points, members) SELECT new.guild_id, new.points, 1 WHERE new.in_guild = 1
    ON CONFLICT (guild_id, points) DO UPDATE SET members = members + 1;
END;
