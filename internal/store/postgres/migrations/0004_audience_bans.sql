-- Broadcast audience bans, PostgreSQL. Times are TIMESTAMPTZ and text
-- columns use the "C" collation, as in 0001.

-- A user a host banned from a broadcast class's audience. The ban goes
-- with its class and with the banned user; banned_by is cleared when the
-- host's account is deleted, so that the ban outlives it.
CREATE TABLE audience_bans (
    class_id   TEXT COLLATE "C" NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by  TEXT COLLATE "C" REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (class_id, user_id)
);
CREATE INDEX audience_bans_by_user ON audience_bans (user_id);
CREATE INDEX audience_bans_by_banner ON audience_bans (banned_by);
