-- The rollover no longer finds streaks to reset through an index: it walks the guild's members in primary
-- key ranges (bot/storage/members.py, reset_streaks). The partial index WHERE streak > 0 made every reset
-- (and every change of last_active_date of a member with a streak) delete an index entry too; PostgreSQL
-- could then not keep those updates on their page (HOT), which made the rollover of a large guild twice
-- as slow as a plain UPDATE. Dropped on both backends, so that both schemas stay alike.
DROP INDEX member_stats_by_last_active;
