-- Broadcast classes, SQLite: stream keys, and chat moderation.
-- Times are INTEGER Unix milliseconds in UTC, as in 0001.

-- A deleted chat message stays stored (who said what is kept for the
-- record) but is no longer listed.
ALTER TABLE chat_messages ADD COLUMN deleted_at INTEGER;

-- Stream keys of broadcast classes. hash is the SHA-256 of the secret,
-- which is never stored; prefix is its first characters, to recognise it.
-- created_by is cleared when that user is deleted, so an admin's keys
-- outlive the admin's account.
CREATE TABLE stream_keys (
    id         TEXT PRIMARY KEY,
    class_id   TEXT NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    hash       BLOB NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX stream_keys_by_class ON stream_keys (class_id, created_at, id);
