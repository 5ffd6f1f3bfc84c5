package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

const classCols = `live_classes.id, live_classes.title, live_classes.description, live_classes.instructor_id,
	live_classes.start_time, live_classes.end_time, live_classes.duration, live_classes.aws_service,
	live_classes.chime_room_id, live_classes.ivs_channel_arn, live_classes.recording_s3_key,
	live_classes.requires_enrollment, live_classes.access_level, live_classes.max_participants,
	live_classes.current_participants, live_classes.enrolled_count, live_classes.category, live_classes.level,
	live_classes.price, live_classes.is_free, live_classes.tags, live_classes.status,
	live_classes.reminder_sent, live_classes.next_reminder, live_classes.created_at, live_classes.updated_at`

// scanClass scans classCols, then any extra columns into extra.
func scanClass(r scanner, extra ...any) (store.LiveClass, error) {
	var c store.LiveClass
	dest := []any{&c.ID, &c.Title, &c.Description, &c.InstructorID,
		timeScan{&c.StartTime}, timeScan{&c.EndTime}, &c.Duration, &c.Service,
		&c.ChimeRoomID, &c.IVSChannelARN, &c.RecordingS3Key,
		&c.RequiresEnrollment, &c.AccessLevel, &c.MaxParticipants,
		&c.CurrentParticipants, &c.EnrolledCount, &c.Category, &c.Level,
		&c.Price, &c.IsFree, tagsScan{&c.Tags}, &c.Status,
		&c.ReminderSent, nullTimeScan{&c.NextReminder}, timeScan{&c.CreatedAt}, timeScan{&c.UpdatedAt}}
	err := r.Scan(append(dest, extra...)...)
	return c, err
}

func scanClassRows(r *sql.Rows) (store.LiveClass, error) { return scanClass(r) }

// CreateClass stores c, filling a missing ID and timestamps. EnrolledCount
// and CurrentParticipants start at zero whatever c says: the store keeps
// the first, the media plane the second. Times are kept to the
// millisecond, and c is updated to what was stored.
func (db *DB) CreateClass(ctx context.Context, c *store.LiveClass) error {
	if c.ID == "" {
		c.ID = store.ClassID(newID())
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now()
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	c.CreatedAt, c.UpdatedAt = ts(c.CreatedAt), ts(c.UpdatedAt)
	c.StartTime, c.EndTime = ts(c.StartTime), ts(c.EndTime)
	if c.NextReminder != nil {
		t := ts(*c.NextReminder)
		c.NextReminder = &t
	}
	c.EnrolledCount, c.CurrentParticipants = 0, 0
	tags, err := db.d.Tags(c.Tags)
	if err != nil {
		return apperr.Field("tags", "cannot encode: %v", err)
	}
	_, err = db.exec(ctx, `INSERT INTO live_classes (id, title, description, instructor_id, start_time, end_time,
		duration, aws_service, chime_room_id, ivs_channel_arn, recording_s3_key, requires_enrollment, access_level,
		max_participants, current_participants, enrolled_count, category, level, price, is_free, tags, status,
		reminder_sent, next_reminder, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(c.ID), c.Title, c.Description, string(c.InstructorID), db.tm(c.StartTime), db.tm(c.EndTime),
		c.Duration, string(c.Service), c.ChimeRoomID, c.IVSChannelARN, c.RecordingS3Key, c.RequiresEnrollment,
		string(c.AccessLevel), c.MaxParticipants, c.Category, string(c.Level), c.Price, c.IsFree, tags,
		string(c.Status), c.ReminderSent, db.tmp(c.NextReminder), db.tm(c.CreatedAt), db.tm(c.UpdatedAt))
	switch {
	case err == nil:
		return nil
	case db.d.IsForeignKey(err):
		return apperr.Field("instructorId", "no user with id %s", c.InstructorID)
	case db.d.IsUnique(err):
		return conflictField("id", "a class with this id already exists")
	}
	return db.wrap(err, "create class")
}

// ClassByID returns the class, or NotFound.
func (db *DB) ClassByID(ctx context.Context, id store.ClassID) (store.LiveClass, error) {
	c, err := scanClass(db.queryRow(ctx, "SELECT "+classCols+" FROM live_classes WHERE id = ?", string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return c, notFound("class", id)
	}
	return c, db.wrap(err, "class by id")
}

// ClassForUser returns the class and whether u is enrolled in it, or
// NotFound. The enrollment is an EXISTS on the enrollments' unique
// (user_id, live_class_id) index inside the class's primary-key read, so
// the join check costs one statement instead of two.
func (db *DB) ClassForUser(ctx context.Context, id store.ClassID, u store.UserID) (store.LiveClass, bool, error) {
	var enrolled bool
	c, err := scanClass(db.queryRow(ctx, "SELECT "+classCols+`, EXISTS (SELECT 1 FROM enrollments
		WHERE enrollments.user_id = ? AND enrollments.live_class_id = live_classes.id)
		FROM live_classes WHERE live_classes.id = ?`, string(u), string(id)), &enrolled)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, notFound("class", id)
	}
	return c, enrolled, db.wrap(err, "class for user")
}

// ClassesByIDs returns the classes that exist, in one query.
func (db *DB) ClassesByIDs(ctx context.Context, ids []store.ClassID) ([]store.LiveClass, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := idArgs(ids)
	out, err := queryAll(ctx, db, "SELECT "+classCols+" FROM live_classes WHERE id IN ("+placeholders(len(args))+")", args, scanClassRows)
	return out, db.wrap(err, "classes by ids")
}

// ListClasses pages through classes by (startTime, id), optionally of one
// instructor (the byInstructor index) and filtered.
func (db *DB) ListClasses(ctx context.Context, q store.ClassQuery) (store.List[store.LiveClass], error) {
	clock := q.Now
	if clock.IsZero() {
		clock = time.Now()
	}
	var where []string
	var args []any
	if q.InstructorID != "" {
		where = append(where, "live_classes.instructor_id = ?")
		args = append(args, string(q.InstructorID))
	}
	return list(ctx, db, listSpec[store.LiveClass]{
		table: "live_classes", cols: classCols, sortCol: "start_time",
		where: where, args: args, filter: q.Filter, fields: classFields, now: clock,
		page: q.Page, scan: scanClassRows,
		key: func(c *store.LiveClass) (time.Time, string) { return c.StartTime, string(c.ID) },
	})
}

// UpdateClass writes every field of c except EnrolledCount,
// CurrentParticipants and CreatedAt. A zero UpdatedAt is set to now.
func (db *DB) UpdateClass(ctx context.Context, c store.LiveClass) error {
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = now()
	}
	tags, err := db.d.Tags(c.Tags)
	if err != nil {
		return apperr.Field("tags", "cannot encode: %v", err)
	}
	res, err := db.exec(ctx, `UPDATE live_classes SET title = ?, description = ?, instructor_id = ?, start_time = ?,
		end_time = ?, duration = ?, aws_service = ?, chime_room_id = ?, ivs_channel_arn = ?, recording_s3_key = ?,
		requires_enrollment = ?, access_level = ?, max_participants = ?, category = ?, level = ?, price = ?,
		is_free = ?, tags = ?, status = ?, reminder_sent = ?, next_reminder = ?, updated_at = ?
		WHERE id = ?`,
		c.Title, c.Description, string(c.InstructorID), db.tm(c.StartTime), db.tm(c.EndTime), c.Duration,
		string(c.Service), c.ChimeRoomID, c.IVSChannelARN, c.RecordingS3Key, c.RequiresEnrollment,
		string(c.AccessLevel), c.MaxParticipants, c.Category, string(c.Level), c.Price, c.IsFree, tags,
		string(c.Status), c.ReminderSent, db.tmp(c.NextReminder), db.tm(c.UpdatedAt), string(c.ID))
	if err != nil {
		if db.d.IsForeignKey(err) {
			return apperr.Field("instructorId", "no user with id %s", c.InstructorID)
		}
		return db.wrap(err, "update class")
	}
	return affected(db, res, "class", c.ID)
}

// SetCurrentParticipants records how many people are in the live class;
// it writes that column alone, so it never races a class edit.
func (db *DB) SetCurrentParticipants(ctx context.Context, id store.ClassID, n int) error {
	if n < 0 {
		return apperr.Field("currentParticipants", "must not be negative")
	}
	res, err := db.exec(ctx, "UPDATE live_classes SET current_participants = ? WHERE id = ?", n, string(id))
	if err != nil {
		return db.wrap(err, "set current participants")
	}
	return affected(db, res, "class", id)
}

// DeleteClass removes the class; its enrollments and recordings go with
// it (ON DELETE CASCADE).
func (db *DB) DeleteClass(ctx context.Context, id store.ClassID) error {
	res, err := db.exec(ctx, "DELETE FROM live_classes WHERE id = ?", string(id))
	if err != nil {
		return db.wrap(err, "delete class")
	}
	return affected(db, res, "class", id)
}
