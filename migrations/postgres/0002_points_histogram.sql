-- How many ranked members (still in the guild) have each points value; see ../0002_points_histogram.sql.
-- Row triggers keep it right whatever writes member_stats; their WHEN clauses are checked without calling the
-- function, so the frequent upserts that change neither points nor in_guild cost nothing here.

CREATE TABLE points_histogram (
    guild_id BIGINT  NOT NULL,
    points   INTEGER NOT NULL,
    members  INTEGER NOT NULL,
    PRIMARY KEY (guild_id, points)
);

INSERT INTO points_histogram (guild_id, points, members)
SELECT guild_id, points, COUNT(*) FROM member_stats WHERE in_guild = 1 GROUP BY guild_id, points;

-- One function for the three triggers; migration 0003 replaces it with one that also keeps tie_blocks.
CREATE FUNCTION member_stats_ranking() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.in_guild = 1 THEN
        UPDATE points_histogram SET members = members - 1 WHERE guild_id = OLD.guild_id AND points = OLD.points;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.in_guild = 1 THEN
        INSERT INTO points_histogram AS h (guild_id, points, members) VALUES (NEW.guild_id, NEW.points, 1)
        ON CONFLICT (guild_id, points) DO UPDATE SET members = h.members + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER member_stats_ranking_insert AFTER INSERT ON member_stats
FOR EACH ROW WHEN (NEW.in_guild = 1) EXECUTE FUNCTION member_stats_ranking();

CREATE TRIGGER member_stats_ranking_delete AFTER DELETE ON member_stats
FOR EACH ROW WHEN (OLD.in_guild = 1) EXECUTE FUNCTION member_stats_ranking();

CREATE TRIGGER member_stats_ranking_update AFTER UPDATE OF points, in_guild ON member_stats
FOR EACH ROW WHEN (OLD.points IS DISTINCT FROM NEW.points OR OLD.in_guild IS DISTINCT FROM NEW.in_guild)
EXECUTE FUNCTION member_stats_ranking();
