package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

const enrollmentCols = `enrollments.id, enrollments.user_id, enrollments.live_class_id, enrollments.enrolled_at,
	enrollments.attended, enrollments.attendance_duration, enrollments.feedback, enrollments.rating,
	enrollments.created_at, enrollments.updated_at`

func scanEnrollment(r scanner) (store.Enrollment, error) {
	var e store.Enrollment
	err := r.Scan(&e.ID, &e.UserID, &e.ClassID, timeScan{&e.EnrolledAt},
		&e.Attended, &e.AttendanceDuration, &e.Feedback, &e.Rating,
		timeScan{&e.CreatedAt}, timeScan{&e.UpdatedAt})
	return e, err
}

func scanEnrollmentRows(r *sql.Rows) (store.Enrollment, error) { return scanEnrollment(r) }

// Errors of Enroll that callers may want to tell apart by message; both
// are Conflicts.
var (
	errFull     = apperr.New(apperr.Conflict, "class is full")
	errEnrolled = apperr.New(apperr.Conflict, "already enrolled in this class")
)

// Enroll takes a seat in one transaction: the conditional increment of
// enrolled_count admits a writer only while a seat is free (PostgreSQL
// re-checks the condition after a concurrent writer commits; SQLite has one
// writer at a time), and a failed insert rolls the increment back, so N
// concurrent calls for M seats admit exactly M.
func (db *DB) Enroll(ctx context.Context, e *store.Enrollment) error {
	givenID := e.ID != ""
	if !givenID {
		e.ID = store.EnrollmentID(newID())
	}
	if e.EnrolledAt.IsZero() {
		e.EnrolledAt = now()
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = e.EnrolledAt
	}
	if e.UpdatedAt.IsZero() {
		e.UpdatedAt = e.CreatedAt
	}
	e.EnrolledAt, e.CreatedAt, e.UpdatedAt = ts(e.EnrolledAt), ts(e.CreatedAt), ts(e.UpdatedAt)
	return db.tx(ctx, func(tx *sql.Tx) error {
		// Already enrolled is the more useful answer than full, so ask first.
		var one int
		err := tx.QueryRowContext(ctx, db.q("SELECT 1 FROM enrollments WHERE user_id = ? AND live_class_id = ?"),
			string(e.UserID), string(e.ClassID)).Scan(&one)
		if err == nil {
			return errEnrolled
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return db.wrap(err, "enroll")
		}
		if givenID {
			// Asked here, inside the transaction, because after a failed
			// insert PostgreSQL allows no more statements in it, and a
			// lookup on another connection could wait forever for a pool
			// whose connections are all held by enrollments queued behind
			// this one.
			err := tx.QueryRowContext(ctx, db.q("SELECT 1 FROM enrollments WHERE id = ?"), string(e.ID)).Scan(&one)
			if err == nil {
				return conflictField("id", "an enrollment with this id already exists")
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return db.wrap(err, "enroll")
			}
		}
		res, err := tx.ExecContext(ctx, db.q(`UPDATE live_classes SET enrolled_count = enrolled_count + 1
			WHERE id = ? AND enrolled_count < max_participants`), string(e.ClassID))
		if err != nil {
			return db.wrap(err, "enroll: take seat")
		}
		n, err := res.RowsAffected()
		if err != nil {
			return db.wrap(err, "enroll: take seat")
		}
		if n == 0 {
			err := tx.QueryRowContext(ctx, db.q("SELECT 1 FROM live_classes WHERE id = ?"), string(e.ClassID)).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return notFound("class", e.ClassID)
			}
			if err != nil {
				return db.wrap(err, "enroll")
			}
			return errFull
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO enrollments (id, user_id, live_class_id, enrolled_at, attended,
			attendance_duration, feedback, rating, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			string(e.ID), string(e.UserID), string(e.ClassID), db.tm(e.EnrolledAt), e.Attended,
			e.AttendanceDuration, e.Feedback, e.Rating, db.tm(e.CreatedAt), db.tm(e.UpdatedAt))
		switch {
		case err == nil:
			return nil
		case db.d.IsForeignKey(err):
			return notFound("user", e.UserID)
		case db.d.IsUnique(err):
			// A concurrent enrollment of the same user committed first; the
			// seat goes back with the rollback.
			return errEnrolled
		}
		return db.wrap(err, "enroll")
	})
}

// EnrollmentByID returns the enrollment, or NotFound.
func (db *DB) EnrollmentByID(ctx context.Context, id store.EnrollmentID) (store.Enrollment, error) {
	e, err := scanEnrollment(db.queryRow(ctx, "SELECT "+enrollmentCols+" FROM enrollments WHERE id = ?", string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return e, notFound("enrollment", id)
	}
	return e, db.wrap(err, "enrollment by id")
}

// EnrollmentByUserClass returns the user's enrollment in the class, or
// NotFound.
func (db *DB) EnrollmentByUserClass(ctx context.Context, u store.UserID, c store.ClassID) (store.Enrollment, error) {
	e, err := scanEnrollment(db.queryRow(ctx, "SELECT "+enrollmentCols+" FROM enrollments WHERE user_id = ? AND live_class_id = ?", string(u), string(c)))
	if errors.Is(err, sql.ErrNoRows) {
		return e, apperr.New(apperr.NotFound, "user %s is not enrolled in class %s", u, c)
	}
	return e, db.wrap(err, "enrollment by user and class")
}

// ListEnrollments pages through enrollments by (enrolledAt, id), of a
// user, a class, or both.
func (db *DB) ListEnrollments(ctx context.Context, q store.EnrollmentQuery) (store.List[store.Enrollment], error) {
	var where []string
	var args []any
	if q.UserID != "" {
		where = append(where, "enrollments.user_id = ?")
		args = append(args, string(q.UserID))
	}
	if q.ClassID != "" {
		where = append(where, "enrollments.live_class_id = ?")
		args = append(args, string(q.ClassID))
	}
	return list(ctx, db, listSpec[store.Enrollment]{
		table: "enrollments", cols: enrollmentCols, sortCol: "enrolled_at",
		where: where, args: args, filter: q.Filter, fields: enrollmentFields,
		page: q.Page, scan: scanEnrollmentRows,
		key: func(e *store.Enrollment) (time.Time, string) { return e.EnrolledAt, string(e.ID) },
	})
}

// EnrollmentsByClassIDs returns every enrollment of the classes in one
// query, ordered by (enrolledAt, id).
func (db *DB) EnrollmentsByClassIDs(ctx context.Context, ids []store.ClassID) ([]store.Enrollment, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := idArgs(ids)
	out, err := queryAll(ctx, db, "SELECT "+enrollmentCols+" FROM enrollments WHERE live_class_id IN ("+
		placeholders(len(args))+") ORDER BY enrolled_at, id", args, scanEnrollmentRows)
	return out, db.wrap(err, "enrollments by class ids")
}

// UpdateEnrollment writes attendance, feedback and rating; the user, the
// class and the enrollment time never change. A zero UpdatedAt is set to
// now.
func (db *DB) UpdateEnrollment(ctx context.Context, e store.Enrollment) error {
	if e.UpdatedAt.IsZero() {
		e.UpdatedAt = now()
	}
	res, err := db.exec(ctx, `UPDATE enrollments SET attended = ?, attendance_duration = ?, feedback = ?, rating = ?,
		updated_at = ? WHERE id = ?`,
		e.Attended, e.AttendanceDuration, e.Feedback, e.Rating, db.tm(e.UpdatedAt), string(e.ID))
	if err != nil {
		return db.wrap(err, "update enrollment")
	}
	return affected(db, res, "enrollment", e.ID)
}

// Unenroll deletes the enrollment and gives its seat back, in one
// transaction.
func (db *DB) Unenroll(ctx context.Context, id store.EnrollmentID) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		var class string
		err := tx.QueryRowContext(ctx, db.q("DELETE FROM enrollments WHERE id = ? RETURNING live_class_id"), string(id)).Scan(&class)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("enrollment", id)
		}
		if err != nil {
			return db.wrap(err, "unenroll")
		}
		_, err = tx.ExecContext(ctx, db.q("UPDATE live_classes SET enrolled_count = enrolled_count - 1 WHERE id = ? AND enrolled_count > 0"), class)
		return db.wrap(err, "unenroll: free seat")
	})
}
