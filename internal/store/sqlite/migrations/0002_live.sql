-- The live classroom, SQLite: attendance, chat, polls and votes.
-- Times are INTEGER Unix milliseconds in UTC, as in 0001.

-- One row per stay in a live class: joined, and left (NULL while inside).
CREATE TABLE attendance (
    id        TEXT PRIMARY KEY,
    class_id  TEXT NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at INTEGER NOT NULL,
    left_at   INTEGER
);
CREATE INDEX attendance_by_class_user ON attendance (class_id, user_id, joined_at);

-- Chat messages, kept for replay. group_id '' is the main room. to_user is
-- NULL unless the message was for one participant; to_hosts marks a
-- message for the hosts only.
CREATE TABLE chat_messages (
    id        TEXT PRIMARY KEY,
    class_id  TEXT NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    group_id  TEXT NOT NULL DEFAULT '',
    from_user TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    to_user   TEXT,
    to_hosts  INTEGER NOT NULL DEFAULT 0,
    text      TEXT NOT NULL,
    sent_at   INTEGER NOT NULL
);
CREATE INDEX chat_messages_by_class ON chat_messages (class_id, sent_at, id);

-- Polls; options is a JSON array of strings. closed_at is NULL while open.
CREATE TABLE polls (
    id         TEXT PRIMARY KEY,
    class_id   TEXT NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    question   TEXT NOT NULL,
    options    TEXT NOT NULL,
    multiple   INTEGER NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    closed_at  INTEGER
);
CREATE INDEX polls_by_class ON polls (class_id, created_at, id);

-- One vote per user and poll; choices is a JSON array of option indexes.
CREATE TABLE poll_votes (
    poll_id  TEXT NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    choices  TEXT NOT NULL,
    voted_at INTEGER NOT NULL,
    PRIMARY KEY (poll_id, user_id)
);
