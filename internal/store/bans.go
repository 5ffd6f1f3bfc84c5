package store

import (
	"context"
	"time"
)

// AudienceBan is a user a host banned from a broadcast class's audience.
// It is stored so that it holds across restarts of the server, until a
// host lifts it.
type AudienceBan struct {
	ClassID   ClassID
	UserID    UserID
	BannedBy  UserID // empty once that user is deleted
	CreatedAt time.Time
}

// AudienceBans stores the bans of broadcast audiences.
type AudienceBans interface {
	// BanAudienceUser bans user from class's audience. Banning a banned
	// user again changes nothing (the first ban's author and time stay).
	// Invalid when the class or either user does not exist.
	BanAudienceUser(ctx context.Context, class ClassID, user, by UserID) error
	// UnbanAudienceUser lifts the ban; NotFound when the user is not
	// banned from the class.
	UnbanAudienceUser(ctx context.Context, class ClassID, user UserID) error
	// AudienceBans returns a class's bans, oldest first.
	AudienceBans(ctx context.Context, class ClassID) ([]AudienceBan, error)
}
