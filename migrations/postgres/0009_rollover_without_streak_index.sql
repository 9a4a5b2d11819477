-- The rollover no longer finds streaks to reset through an index: it walks the guild's members in primary
-- key ranges (bot/storage/members.py, reset_streaks); see ../0009_rollover_without_streak_index.sql.
-- With no index left on streak (nor on last_active_date), setting streak = 0 changes no indexed column,
-- so each reset stays on its page (a HOT update, in the free space fillfactor = 80 keeps, see 0001) instead
-- of moving the row out of the partial index WHERE streak > 0 and writing new entries in every index.
DROP INDEX member_stats_by_last_active;
