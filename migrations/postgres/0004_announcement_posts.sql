-- An announcement is claimed into a post before it is sent; see ../0004_announcement_posts.sql.
ALTER TABLE outbox ADD COLUMN post_key TEXT COLLATE "C";
CREATE INDEX outbox_by_post ON outbox (post_key) WHERE post_key IS NOT NULL;
