package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// CreateSession stores a sign-in. A zero CreatedAt is set to now; an
// unknown user is NotFound; a hash already stored is a Conflict.
func (db *DB) CreateSession(ctx context.Context, s store.Session) error {
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now()
	}
	_, err := db.exec(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		s.TokenHash, string(s.UserID), db.tm(s.CreatedAt), db.tm(s.ExpiresAt))
	switch {
	case err == nil:
		return nil
	case db.d.IsForeignKey(err):
		return notFound("user", s.UserID)
	case db.d.IsUnique(err):
		return apperr.New(apperr.Conflict, "session already exists")
	}
	return db.wrap(err, "create session")
}

// SessionByHash returns the session as stored, expired or not: the caller
// owns the clock and decides.
func (db *DB) SessionByHash(ctx context.Context, hash string) (store.Session, error) {
	var s store.Session
	err := db.queryRow(ctx, `SELECT token_hash, user_id, created_at, expires_at FROM sessions WHERE token_hash = ?`, hash).
		Scan(&s.TokenHash, &s.UserID, timeScan{&s.CreatedAt}, timeScan{&s.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return s, apperr.New(apperr.NotFound, "session not found")
	}
	return s, db.wrap(err, "session by hash")
}

// DeleteSession signs a session out; deleting a missing one is not an
// error, so that signing out twice is harmless.
func (db *DB) DeleteSession(ctx context.Context, hash string) error {
	_, err := db.exec(ctx, "DELETE FROM sessions WHERE token_hash = ?", hash)
	return db.wrap(err, "delete session")
}

// DeleteExpiredSessions removes sessions that expired at or before now.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	_, err := db.exec(ctx, "DELETE FROM sessions WHERE expires_at <= ?", db.tm(now))
	return db.wrap(err, "delete expired sessions")
}

// SessionUserByHash returns the session and its user in one indexed read,
// expired or not (the caller owns the clock).
func (db *DB) SessionUserByHash(ctx context.Context, hash string) (store.Session, store.User, error) {
	var s store.Session
	var u store.User
	err := db.queryRow(ctx, `SELECT sessions.token_hash, sessions.created_at, sessions.expires_at, `+userCols+`
		FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.token_hash = ?`, hash).
		Scan(&s.TokenHash, timeScan{&s.CreatedAt}, timeScan{&s.ExpiresAt},
			&u.ID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, timeScan{&u.CreatedAt}, timeScan{&u.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return s, u, apperr.New(apperr.NotFound, "session not found")
	}
	s.UserID = u.ID
	return s, u, db.wrap(err, "session and user by hash")
}

// DeleteUserSessions signs a user out of every session.
func (db *DB) DeleteUserSessions(ctx context.Context, id store.UserID) error {
	_, err := db.exec(ctx, "DELETE FROM sessions WHERE user_id = ?", string(id))
	return db.wrap(err, "delete user sessions")
}
