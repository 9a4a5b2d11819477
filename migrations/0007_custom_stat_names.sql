-- The custom stats in use in a guild (stat autocomplete, condition parsing) are read by walking this
-- index one distinct name at a time, instead of scanning every member's custom stats on each keystroke.
CREATE INDEX custom_stats_by_name ON custom_stats (guild_id, stat);
