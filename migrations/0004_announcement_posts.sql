-- An announcement is claimed into a post before it is sent: items sharing a post_key go out as one
-- Discord message (a single unlock, or a digest), and the key is that message's nonce. A retry, or a
-- restart after a crash between posting and marking sent, re-sends exactly the same message with the
-- same nonce, and Discord (enforce_nonce) returns the message it already created instead of a second one.
-- state gains 'dropped': an announcement whose achievement was removed (or taken back) before it went out.
ALTER TABLE outbox ADD COLUMN post_key TEXT;
CREATE INDEX outbox_by_post ON outbox (post_key) WHERE post_key IS NOT NULL;
