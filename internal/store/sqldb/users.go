package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

const userCols = "users.id, users.email, users.name, users.role, users.password_hash, users.created_at, users.updated_at"

type scanner interface{ Scan(...any) error }

func scanUser(r scanner) (store.User, error) {
	var u store.User
	err := r.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.PasswordHash,
		timeScan{&u.CreatedAt}, timeScan{&u.UpdatedAt})
	return u, err
}

func scanUserRows(r *sql.Rows) (store.User, error) { return scanUser(r) }

// CreateUser stores u, filling a missing ID and timestamps and lower-casing
// the email (uniqueness is case-insensitive).
func (db *DB) CreateUser(ctx context.Context, u *store.User) error {
	if u.ID == "" {
		u.ID = store.UserID(newID())
	}
	u.Email = strings.ToLower(u.Email)
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	u.CreatedAt, u.UpdatedAt = ts(u.CreatedAt), ts(u.UpdatedAt)
	_, err := db.exec(ctx, `INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		string(u.ID), u.Email, u.Name, string(u.Role), u.PasswordHash, db.tm(u.CreatedAt), db.tm(u.UpdatedAt))
	if err != nil {
		return db.userWriteErr(ctx, err, u.ID, u.Email)
	}
	return nil
}

// userWriteErr tells an email taken from an id taken.
func (db *DB) userWriteErr(ctx context.Context, err error, id store.UserID, email string) error {
	if !db.d.IsUnique(err) {
		return db.wrap(err, "write user")
	}
	if other, lookErr := db.UserByEmail(ctx, email); lookErr == nil && other.ID != id {
		return conflictField("email", "email address is already registered")
	}
	return conflictField("id", "a user with this id already exists")
}

// UserByID returns the user, or NotFound.
func (db *DB) UserByID(ctx context.Context, id store.UserID) (store.User, error) {
	u, err := scanUser(db.queryRow(ctx, "SELECT "+userCols+" FROM users WHERE id = ?", string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return u, notFound("user", id)
	}
	return u, db.wrap(err, "user by id")
}

// UserByEmail returns the user with this email, in any letter case.
func (db *DB) UserByEmail(ctx context.Context, email string) (store.User, error) {
	u, err := scanUser(db.queryRow(ctx, "SELECT "+userCols+" FROM users WHERE email = ?", strings.ToLower(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return u, apperr.New(apperr.NotFound, "no user with this email")
	}
	return u, db.wrap(err, "user by email")
}

// UsersByIDs returns the users that exist, in one query.
func (db *DB) UsersByIDs(ctx context.Context, ids []store.UserID) ([]store.User, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := idArgs(ids)
	out, err := queryAll(ctx, db, "SELECT "+userCols+" FROM users WHERE id IN ("+placeholders(len(args))+")", args, scanUserRows)
	return out, db.wrap(err, "users by ids")
}

// ListUsers pages through users by (createdAt, id).
func (db *DB) ListUsers(ctx context.Context, q store.UserQuery) (store.List[store.User], error) {
	return list(ctx, db, listSpec[store.User]{
		table: "users", cols: userCols, sortCol: "created_at",
		filter: q.Filter, fields: userFields, page: q.Page, scan: scanUserRows,
		key: func(u *store.User) (time.Time, string) { return u.CreatedAt, string(u.ID) },
	})
}

// UpdateUser writes email, name, role and password hash. A zero UpdatedAt
// is set to now.
func (db *DB) UpdateUser(ctx context.Context, u store.User) error {
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = now()
	}
	email := strings.ToLower(u.Email)
	res, err := db.exec(ctx, `UPDATE users SET email = ?, name = ?, role = ?, password_hash = ?, updated_at = ? WHERE id = ?`,
		email, u.Name, string(u.Role), u.PasswordHash, db.tm(u.UpdatedAt), string(u.ID))
	if err != nil {
		return db.userWriteErr(ctx, err, u.ID, email)
	}
	return affected(db, res, "user", u.ID)
}

// DeleteUser removes a user with their sessions and enrollments (freeing
// those seats). A user who is the instructor of any class is not deleted:
// that is a Conflict, because deleting their classes would silently take
// other people's enrollments with them; reassign or delete the classes
// first.
func (db *DB) DeleteUser(ctx context.Context, id store.UserID) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, db.q("SELECT COUNT(*) FROM live_classes WHERE instructor_id = ?"), string(id)).Scan(&n); err != nil {
			return db.wrap(err, "delete user")
		}
		if n > 0 {
			return apperr.New(apperr.Conflict, "user %s is the instructor of %d class(es); reassign or delete them first", id, n)
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE live_classes SET enrolled_count = enrolled_count - 1
			WHERE id IN (SELECT live_class_id FROM enrollments WHERE user_id = ?)`), string(id)); err != nil {
			return db.wrap(err, "delete user: free seats")
		}
		res, err := tx.ExecContext(ctx, db.q("DELETE FROM users WHERE id = ?"), string(id))
		if err != nil {
			return db.wrap(err, "delete user")
		}
		return affected(db, res, "user", id)
	})
}

// CountUsers counts accounts (zero means a fresh install).
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n)
	return n, db.wrap(err, "count users")
}

// affected turns "no row changed" into NotFound.
func affected(db *DB, res sql.Result, what string, id any) error {
	n, err := res.RowsAffected()
	if err != nil {
		return db.wrap(err, "rows affected")
	}
	if n == 0 {
		return notFound(what, id)
	}
	return nil
}

// idArgs turns typed IDs into parameters, dropping duplicates so that a
// loader's batch costs no more than its distinct keys.
func idArgs[T ~string](ids []T) []any {
	seen := make(map[T]struct{}, len(ids))
	args := make([]any, 0, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; ok {
			continue
		}
		seen[id] = struct{}{}
		args = append(args, string(id))
	}
	return args
}
