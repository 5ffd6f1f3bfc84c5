-- Broadcast classes, PostgreSQL: stream keys, and chat moderation.
-- Times are TIMESTAMPTZ and text columns use the "C" collation, as in 0001.

-- A deleted chat message stays stored (who said what is kept for the
-- record) but is no longer listed.
ALTER TABLE chat_messages ADD COLUMN deleted_at TIMESTAMPTZ;

-- Stream keys of broadcast classes. hash is the SHA-256 of the secret,
-- which is never stored; prefix is its first characters, to recognise it.
-- created_by is cleared when that user is deleted, so an admin's keys
-- outlive the admin's account.
CREATE TABLE stream_keys (
    id         TEXT COLLATE "C" PRIMARY KEY,
    class_id   TEXT COLLATE "C" NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    hash       BYTEA NOT NULL UNIQUE,
    prefix     TEXT COLLATE "C" NOT NULL,
    created_by TEXT COLLATE "C" REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX stream_keys_by_class ON stream_keys (class_id, created_at, id);
CREATE INDEX stream_keys_by_user ON stream_keys (created_by);
