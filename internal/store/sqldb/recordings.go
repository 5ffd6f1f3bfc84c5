package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

const recordingCols = `recordings.id, recordings.live_class_id, recordings.s3_key, recordings.s3_bucket,
	recordings.duration, recordings.thumbnail_url, recordings.transcript_url, recordings.created_at, recordings.updated_at`

func scanRecording(r scanner) (store.Recording, error) {
	var rec store.Recording
	err := r.Scan(&rec.ID, &rec.ClassID, &rec.S3Key, &rec.S3Bucket, &rec.Duration,
		&rec.ThumbnailURL, &rec.TranscriptURL, timeScan{&rec.CreatedAt}, timeScan{&rec.UpdatedAt})
	return rec, err
}

func scanRecordingRows(r *sql.Rows) (store.Recording, error) { return scanRecording(r) }

// CreateRecording stores r, filling a missing ID and timestamps. A class
// that does not exist is invalid input naming liveClassId.
func (db *DB) CreateRecording(ctx context.Context, r *store.Recording) error {
	if r.ID == "" {
		r.ID = store.RecordingID(newID())
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now()
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	r.CreatedAt, r.UpdatedAt = ts(r.CreatedAt), ts(r.UpdatedAt)
	_, err := db.exec(ctx, `INSERT INTO recordings (id, live_class_id, s3_key, s3_bucket, duration, thumbnail_url,
		transcript_url, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(r.ID), string(r.ClassID), r.S3Key, r.S3Bucket, r.Duration, r.ThumbnailURL, r.TranscriptURL,
		db.tm(r.CreatedAt), db.tm(r.UpdatedAt))
	switch {
	case err == nil:
		return nil
	case db.d.IsForeignKey(err):
		return apperr.Field("liveClassId", "no class with id %s", r.ClassID)
	case db.d.IsUnique(err):
		return conflictField("id", "a recording with this id already exists")
	}
	return db.wrap(err, "create recording")
}

// RecordingByID returns the recording, or NotFound.
func (db *DB) RecordingByID(ctx context.Context, id store.RecordingID) (store.Recording, error) {
	r, err := scanRecording(db.queryRow(ctx, "SELECT "+recordingCols+" FROM recordings WHERE id = ?", string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return r, notFound("recording", id)
	}
	return r, db.wrap(err, "recording by id")
}

// ListRecordings pages through recordings by (createdAt, id), optionally
// of one class.
func (db *DB) ListRecordings(ctx context.Context, q store.RecordingQuery) (store.List[store.Recording], error) {
	var where []string
	var args []any
	if q.ClassID != "" {
		where = append(where, "recordings.live_class_id = ?")
		args = append(args, string(q.ClassID))
	}
	return list(ctx, db, listSpec[store.Recording]{
		table: "recordings", cols: recordingCols, sortCol: "created_at",
		where: where, args: args, filter: q.Filter, fields: recordingFields,
		page: q.Page, scan: scanRecordingRows,
		key: func(r *store.Recording) (time.Time, string) { return r.CreatedAt, string(r.ID) },
	})
}

// RecordingsByClassIDs returns every recording of the classes in one
// query, ordered by (createdAt, id).
func (db *DB) RecordingsByClassIDs(ctx context.Context, ids []store.ClassID) ([]store.Recording, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := idArgs(ids)
	out, err := queryAll(ctx, db, "SELECT "+recordingCols+" FROM recordings WHERE live_class_id IN ("+
		placeholders(len(args))+") ORDER BY created_at, id", args, scanRecordingRows)
	return out, db.wrap(err, "recordings by class ids")
}

// UpdateRecording writes the file fields; the class never changes. A zero
// UpdatedAt is set to now.
func (db *DB) UpdateRecording(ctx context.Context, r store.Recording) error {
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = now()
	}
	res, err := db.exec(ctx, `UPDATE recordings SET s3_key = ?, s3_bucket = ?, duration = ?, thumbnail_url = ?,
		transcript_url = ?, updated_at = ? WHERE id = ?`,
		r.S3Key, r.S3Bucket, r.Duration, r.ThumbnailURL, r.TranscriptURL, db.tm(r.UpdatedAt), string(r.ID))
	if err != nil {
		return db.wrap(err, "update recording")
	}
	return affected(db, res, "recording", r.ID)
}

// DeleteRecording removes the recording's record (not its file).
func (db *DB) DeleteRecording(ctx context.Context, id store.RecordingID) error {
	res, err := db.exec(ctx, "DELETE FROM recordings WHERE id = ?", string(id))
	if err != nil {
		return db.wrap(err, "delete recording")
	}
	return affected(db, res, "recording", id)
}
