-- Names are unique per guild by a Unicode key computed by the storage layer; see ../0006_name_keys.sql.
ALTER TABLE achievements ADD COLUMN name_key TEXT COLLATE "C";
CREATE UNIQUE INDEX achievements_by_name_key ON achievements (guild_id, name_key);

ALTER TABLE tiers ADD COLUMN name_key TEXT COLLATE "C";
CREATE UNIQUE INDEX tiers_by_name_key ON tiers (guild_id, name_key);
