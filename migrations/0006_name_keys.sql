-- Names are unique per guild by a Unicode key (NFKC, case folded, spaces collapsed): SQLite's NOCASE
-- folds ASCII only, so `école` and `ÉCOLE` were two names. SQL cannot compute the key; rows stored
-- before this migration get it from the storage layer at start (Storage.open), and every write sets it.
ALTER TABLE achievements ADD COLUMN name_key TEXT;
CREATE UNIQUE INDEX achievements_by_name_key ON achievements (guild_id, name_key);

ALTER TABLE tiers ADD COLUMN name_key TEXT;
CREATE UNIQUE INDEX tiers_by_name_key ON tiers (guild_id, name_key);
