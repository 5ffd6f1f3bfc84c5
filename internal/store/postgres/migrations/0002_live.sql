-- The live classroom, PostgreSQL: attendance, chat, polls and votes.
-- Times are TIMESTAMPTZ and text columns use the "C" collation, as in 0001.
-- options and choices are JSON text written and read by the store alone.

-- One row per stay in a live class: joined, and left (NULL while inside).
CREATE TABLE attendance (
    id        TEXT COLLATE "C" PRIMARY KEY,
    class_id  TEXT COLLATE "C" NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    user_id   TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at TIMESTAMPTZ NOT NULL,
    left_at   TIMESTAMPTZ
);
CREATE INDEX attendance_by_class_user ON attendance (class_id, user_id, joined_at);
CREATE INDEX attendance_by_user ON attendance (user_id);

-- Chat messages, kept for replay. group_id '' is the main room. to_user is
-- NULL unless the message was for one participant; to_hosts marks a
-- message for the hosts only.
CREATE TABLE chat_messages (
    id        TEXT COLLATE "C" PRIMARY KEY,
    class_id  TEXT COLLATE "C" NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    group_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
    from_user TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    to_user   TEXT COLLATE "C",
    to_hosts  BOOLEAN NOT NULL DEFAULT FALSE,
    text      TEXT COLLATE "C" NOT NULL,
    sent_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX chat_messages_by_class ON chat_messages (class_id, sent_at, id);
CREATE INDEX chat_messages_by_user ON chat_messages (from_user);

-- Polls; closed_at is NULL while open.
CREATE TABLE polls (
    id         TEXT COLLATE "C" PRIMARY KEY,
    class_id   TEXT COLLATE "C" NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    question   TEXT COLLATE "C" NOT NULL,
    options    TEXT NOT NULL,
    multiple   BOOLEAN NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    closed_at  TIMESTAMPTZ
);
CREATE INDEX polls_by_class ON polls (class_id, created_at, id);
CREATE INDEX polls_by_user ON polls (created_by);

-- One vote per user and poll.
CREATE TABLE poll_votes (
    poll_id  TEXT COLLATE "C" NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    user_id  TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    choices  TEXT NOT NULL,
    voted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (poll_id, user_id)
);
CREATE INDEX poll_votes_by_user ON poll_votes (user_id);
