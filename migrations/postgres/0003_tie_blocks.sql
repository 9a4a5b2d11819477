-- Members tied on points are ordered by (member_id % 1024, member_id), split into 1024 blocks whose sizes
-- are kept here; see ../0003_tie_blocks.sql. The triggers of 0002 now keep both tables in one call.

CREATE TABLE tie_blocks (
    guild_id BIGINT  NOT NULL,
    points   INTEGER NOT NULL,
    block    INTEGER NOT NULL,  -- member_id % 1024
    members  INTEGER NOT NULL,
    PRIMARY KEY (guild_id, points, block)
);

INSERT INTO tie_blocks (guild_id, points, block, members)
SELECT guild_id, points, member_id % 1024, COUNT(*) FROM member_stats WHERE in_guild = 1
GROUP BY guild_id, points, member_id % 1024;

DROP INDEX member_stats_by_points;
CREATE INDEX member_stats_leaderboard ON member_stats (guild_id, in_guild, points DESC, (member_id % 1024), member_id);

CREATE OR REPLACE FUNCTION member_stats_ranking() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.in_guild = 1 THEN
        UPDATE points_histogram SET members = members - 1 WHERE guild_id = OLD.guild_id AND points = OLD.points;
        UPDATE tie_blocks SET members = members - 1
        WHERE guild_id = OLD.guild_id AND points = OLD.points AND block = OLD.member_id % 1024;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.in_guild = 1 THEN
        INSERT INTO points_histogram AS h (guild_id, points, members) VALUES (NEW.guild_id, NEW.points, 1)
        ON CONFLICT (guild_id, points) DO UPDATE SET members = h.members + 1;
        INSERT INTO tie_blocks AS t (guild_id, points, block, members)
        VALUES (NEW.guild_id, NEW.points, NEW.member_id % 1024, 1)
        ON CONFLICT (guild_id, points, block) DO UPDATE SET members = t.members + 1;
    END IF;
    RETURN NULL;
END
$$;
