-- The custom stats in use in a guild are read by walking this index one distinct name at a time;
-- see ../0007_custom_stat_names.sql.
CREATE INDEX custom_stats_by_name ON custom_stats (guild_id, stat);
