package sqldb

import (
	"context"
	"database/sql"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// BanAudienceUser stores a ban; a second ban of the same user in the same
// class keeps the first (ON CONFLICT DO NOTHING, which both engines speak).
func (db *DB) BanAudienceUser(ctx context.Context, class store.ClassID, user, by store.UserID) error {
	switch {
	case class == "":
		return apperr.Field("classId", "is required")
	case user == "":
		return apperr.Field("user", "is required")
	}
	var author any
	if by != "" {
		author = string(by)
	}
	_, err := db.exec(ctx, `INSERT INTO audience_bans (class_id, user_id, banned_by, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (class_id, user_id) DO NOTHING`,
		string(class), string(user), author, db.tm(now()))
	if err != nil && db.d.IsForeignKey(err) {
		return apperr.New(apperr.Invalid, "no class %s, or no user %s or %s", class, user, by)
	}
	return db.wrap(err, "ban audience user")
}

// UnbanAudienceUser deletes a ban.
func (db *DB) UnbanAudienceUser(ctx context.Context, class store.ClassID, user store.UserID) error {
	res, err := db.exec(ctx, "DELETE FROM audience_bans WHERE class_id = ? AND user_id = ?", string(class), string(user))
	if err != nil {
		return db.wrap(err, "unban audience user")
	}
	return affected(db, res, "ban of user in class", string(class)+"/"+string(user))
}

// AudienceBans returns a class's bans, oldest first.
func (db *DB) AudienceBans(ctx context.Context, class store.ClassID) ([]store.AudienceBan, error) {
	out, err := queryAll(ctx, db, `SELECT class_id, user_id, banned_by, created_at FROM audience_bans
		WHERE class_id = ? ORDER BY created_at, user_id`,
		[]any{string(class)}, func(r *sql.Rows) (store.AudienceBan, error) {
			var b store.AudienceBan
			var by sql.NullString
			err := r.Scan(&b.ClassID, &b.UserID, &by, timeScan{&b.CreatedAt})
			b.BannedBy = store.UserID(by.String)
			return b, err
		})
	return out, db.wrap(err, "audience bans")
}
