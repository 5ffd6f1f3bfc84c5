-- liveclass schema, SQLite.
-- Times are INTEGER Unix milliseconds in UTC (the store truncates to the
-- millisecond on write, so a value read back equals the one written).
-- Booleans are INTEGER 0/1; tags are a JSON array of strings.

-- Emails are stored lower-cased by the store, so the plain UNIQUE index is
-- case-insensitive uniqueness.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX users_by_created ON users (created_at, id);

-- Sessions go with their user.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- Deleting a user who instructs classes is refused (RESTRICT; the store
-- reports a Conflict): their classes hold other people's enrollments, so
-- they must be reassigned or deleted on purpose.
-- enrolled_count is the number of enrollments, kept by the store in the same
-- transaction as each enrollment; current_participants is kept by the media
-- plane.
CREATE TABLE live_classes (
    id                   TEXT PRIMARY KEY,
    title                TEXT NOT NULL,
    description          TEXT,
    instructor_id        TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    start_time           INTEGER NOT NULL,
    end_time             INTEGER NOT NULL,
    duration             INTEGER NOT NULL,
    aws_service          TEXT NOT NULL,
    chime_room_id        TEXT,
    ivs_channel_arn      TEXT,
    recording_s3_key     TEXT,
    requires_enrollment  INTEGER NOT NULL,
    access_level         TEXT NOT NULL,
    max_participants     INTEGER NOT NULL,
    current_participants INTEGER NOT NULL DEFAULT 0,
    enrolled_count       INTEGER NOT NULL DEFAULT 0 CHECK (enrolled_count >= 0),
    category             TEXT NOT NULL,
    level                TEXT NOT NULL,
    price                REAL NOT NULL,
    is_free              INTEGER NOT NULL,
    tags                 TEXT NOT NULL DEFAULT '[]',
    status               TEXT NOT NULL,
    reminder_sent        INTEGER NOT NULL DEFAULT 0,
    next_reminder        INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX live_classes_by_start ON live_classes (start_time, id);
-- The guide's byInstructor index.
CREATE INDEX live_classes_by_instructor ON live_classes (instructor_id, start_time, id);
CREATE INDEX live_classes_by_status ON live_classes (status, start_time);

-- Enrollments go with their class and with their user (the store gives the
-- user's seats back first). One per user and class.
CREATE TABLE enrollments (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    live_class_id       TEXT NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    enrolled_at         INTEGER NOT NULL,
    attended            INTEGER,
    attendance_duration INTEGER,
    feedback            TEXT,
    rating              INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (user_id, live_class_id)
);
CREATE INDEX enrollments_by_class ON enrollments (live_class_id, enrolled_at, id);
CREATE INDEX enrollments_by_user ON enrollments (user_id, enrolled_at, id);
CREATE INDEX enrollments_by_enrolled ON enrollments (enrolled_at, id);

-- Recordings go with their class.
CREATE TABLE recordings (
    id             TEXT PRIMARY KEY,
    live_class_id  TEXT NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    s3_key         TEXT NOT NULL,
    s3_bucket      TEXT NOT NULL,
    duration       INTEGER NOT NULL,
    thumbnail_url  TEXT,
    transcript_url TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX recordings_by_class ON recordings (live_class_id, created_at, id);
CREATE INDEX recordings_by_created ON recordings (created_at, id);
