package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

const streamKeyCols = `id, class_id, hash, prefix, created_by, created_at, revoked_at`

// rowScanner is what *sql.Row and *sql.Rows share.
type rowScanner interface{ Scan(dest ...any) error }

func scanStreamKey(r rowScanner) (store.StreamKey, error) {
	var k store.StreamKey
	var by sql.NullString
	err := r.Scan(&k.ID, &k.ClassID, &k.Hash, &k.Prefix, &by, timeScan{&k.CreatedAt}, nullTimeScan{&k.RevokedAt})
	k.CreatedBy = store.UserID(by.String)
	return k, err
}

// CreateStreamKey stores a key, filling a missing ID and CreatedAt.
func (db *DB) CreateStreamKey(ctx context.Context, k *store.StreamKey) error {
	switch {
	case len(k.Hash) == 0:
		return apperr.Field("hash", "is required")
	case k.Prefix == "":
		return apperr.Field("prefix", "is required")
	}
	if k.ID == "" {
		k.ID = store.StreamKeyID(newID())
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now()
	}
	k.CreatedAt = ts(k.CreatedAt)
	if k.RevokedAt != nil {
		t := ts(*k.RevokedAt)
		k.RevokedAt = &t
	}
	var by any
	if k.CreatedBy != "" {
		by = string(k.CreatedBy)
	}
	_, err := db.exec(ctx, `INSERT INTO stream_keys (id, class_id, hash, prefix, created_by, created_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		string(k.ID), string(k.ClassID), k.Hash, k.Prefix, by, db.tm(k.CreatedAt), db.tmp(k.RevokedAt))
	switch {
	case err == nil:
		return nil
	case db.d.IsForeignKey(err):
		return apperr.New(apperr.Invalid, "no class %s or no user %s", k.ClassID, k.CreatedBy)
	case db.d.IsUnique(err):
		return apperr.New(apperr.Conflict, "a stream key with this id or hash already exists")
	}
	return db.wrap(err, "create stream key")
}

// StreamKeyByHash returns the key with that hash, revoked or not. It runs
// on every WHIP publish, so it goes through a prepared statement.
func (db *DB) StreamKeyByHash(ctx context.Context, hash []byte) (store.StreamKey, error) {
	k, err := scanStreamKey(db.queryRow(ctx, "SELECT "+streamKeyCols+" FROM stream_keys WHERE hash = ?", hash))
	if errors.Is(err, sql.ErrNoRows) {
		return k, apperr.New(apperr.NotFound, "stream key not found")
	}
	return k, db.wrap(err, "stream key by hash")
}

// StreamKeyByID returns one key.
func (db *DB) StreamKeyByID(ctx context.Context, id store.StreamKeyID) (store.StreamKey, error) {
	k, err := scanStreamKey(db.r.QueryRowContext(ctx, db.q("SELECT "+streamKeyCols+" FROM stream_keys WHERE id = ?"), string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return k, notFound("stream key", id)
	}
	return k, db.wrap(err, "stream key by id")
}

// ListStreamKeys returns a class's keys, oldest first.
func (db *DB) ListStreamKeys(ctx context.Context, class store.ClassID) ([]store.StreamKey, error) {
	out, err := queryAll(ctx, db, "SELECT "+streamKeyCols+" FROM stream_keys WHERE class_id = ? ORDER BY created_at, id",
		[]any{string(class)}, func(r *sql.Rows) (store.StreamKey, error) { return scanStreamKey(r) })
	return out, db.wrap(err, "list stream keys")
}

// RevokeStreamKey marks the key revoked, keeping an earlier revocation's
// time.
func (db *DB) RevokeStreamKey(ctx context.Context, id store.StreamKeyID, at time.Time) error {
	res, err := db.exec(ctx, "UPDATE stream_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", db.tm(at), string(id))
	if err != nil {
		return db.wrap(err, "revoke stream key")
	}
	return affected(db, res, "stream key", id)
}
