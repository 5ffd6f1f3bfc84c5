-- liveclass schema, PostgreSQL.
-- Times are TIMESTAMPTZ; the store writes them in UTC truncated to the
-- millisecond, so that both engines give back exactly what was written.
-- Text columns use the "C" collation: comparisons and ordering are by
-- bytes, as in SQLite and DynamoDB, whatever the database's locale.
-- Tags are a JSONB array of strings.

-- Emails are stored lower-cased by the store, so the plain UNIQUE index is
-- case-insensitive uniqueness.
CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    email         TEXT COLLATE "C" NOT NULL UNIQUE,
    name          TEXT COLLATE "C" NOT NULL,
    role          TEXT COLLATE "C" NOT NULL,
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX users_by_created ON users (created_at, id);

-- Sessions go with their user.
CREATE TABLE sessions (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
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
    id                   TEXT COLLATE "C" PRIMARY KEY,
    title                TEXT COLLATE "C" NOT NULL,
    description          TEXT COLLATE "C",
    instructor_id        TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    start_time           TIMESTAMPTZ NOT NULL,
    end_time             TIMESTAMPTZ NOT NULL,
    duration             INTEGER NOT NULL,
    aws_service          TEXT COLLATE "C" NOT NULL,
    chime_room_id        TEXT COLLATE "C",
    ivs_channel_arn      TEXT COLLATE "C",
    recording_s3_key     TEXT COLLATE "C",
    requires_enrollment  BOOLEAN NOT NULL,
    access_level         TEXT COLLATE "C" NOT NULL,
    max_participants     INTEGER NOT NULL,
    current_participants INTEGER NOT NULL DEFAULT 0,
    enrolled_count       INTEGER NOT NULL DEFAULT 0 CHECK (enrolled_count >= 0),
    category             TEXT COLLATE "C" NOT NULL,
    level                TEXT COLLATE "C" NOT NULL,
    price                DOUBLE PRECISION NOT NULL,
    is_free              BOOLEAN NOT NULL,
    tags                 JSONB NOT NULL DEFAULT '[]',
    status               TEXT COLLATE "C" NOT NULL,
    reminder_sent        BOOLEAN NOT NULL DEFAULT FALSE,
    next_reminder        TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX live_classes_by_start ON live_classes (start_time, id);
-- The guide's byInstructor index.
CREATE INDEX live_classes_by_instructor ON live_classes (instructor_id, start_time, id);
CREATE INDEX live_classes_by_status ON live_classes (status, start_time);
CREATE INDEX live_classes_tags ON live_classes USING GIN (tags jsonb_path_ops);

-- Enrollments go with their class and with their user (the store gives the
-- user's seats back first). One per user and class.
CREATE TABLE enrollments (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    user_id             TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    live_class_id       TEXT COLLATE "C" NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    enrolled_at         TIMESTAMPTZ NOT NULL,
    attended            BOOLEAN,
    attendance_duration INTEGER,
    feedback            TEXT COLLATE "C",
    rating              INTEGER,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (user_id, live_class_id)
);
CREATE INDEX enrollments_by_class ON enrollments (live_class_id, enrolled_at, id);
CREATE INDEX enrollments_by_user ON enrollments (user_id, enrolled_at, id);
CREATE INDEX enrollments_by_enrolled ON enrollments (enrolled_at, id);

-- Recordings go with their class.
CREATE TABLE recordings (
    id             TEXT COLLATE "C" PRIMARY KEY,
    live_class_id  TEXT COLLATE "C" NOT NULL REFERENCES live_classes (id) ON DELETE CASCADE,
    s3_key         TEXT COLLATE "C" NOT NULL,
    s3_bucket      TEXT COLLATE "C" NOT NULL,
    duration       INTEGER NOT NULL,
    thumbnail_url  TEXT COLLATE "C",
    transcript_url TEXT COLLATE "C",
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX recordings_by_class ON recordings (live_class_id, created_at, id);
CREATE INDEX recordings_by_created ON recordings (created_at, id);
