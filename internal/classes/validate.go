package classes

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// Limits on what a class may hold.
const (
	MaxTitle          = 200
	MaxDescription    = 10000
	MaxCategory       = 100
	MaxTags           = 20
	MaxTag            = 40
	MaxChimeSeats     = 50     // an interactive room (Chime's own limit)
	MaxIVSSeats       = 100000 // a broadcast channel
	MaxFeedback       = 5000
	MinRating         = 1
	MaxRating         = 5
	maxClassDurationH = 24
)

// minutesBetween is the guide's duration: whole minutes from start to end.
func minutesBetween(start, end time.Time) int {
	return int(end.Sub(start) / time.Minute)
}

// validateClass checks every field rule of a class about to be stored.
func validateClass(c store.LiveClass) error {
	title := strings.TrimSpace(c.Title)
	if n := utf8.RuneCountInString(title); n < 1 || n > MaxTitle {
		return apperr.Field("title", "must be 1 to %d characters", MaxTitle)
	}
	if c.Description != nil && utf8.RuneCountInString(*c.Description) > MaxDescription {
		return apperr.Field("description", "must be at most %d characters", MaxDescription)
	}
	if c.StartTime.IsZero() {
		return apperr.Field("startTime", "is required")
	}
	if !c.EndTime.After(c.StartTime) {
		return apperr.Field("endTime", "must be after startTime")
	}
	if c.EndTime.Sub(c.StartTime) > maxClassDurationH*time.Hour {
		return apperr.Field("endTime", "a class lasts at most %d hours", maxClassDurationH)
	}
	switch c.Service {
	case store.ServiceChime:
		if c.MaxParticipants < 1 || c.MaxParticipants > MaxChimeSeats {
			return apperr.Field("maxParticipants", "must be 1 to %d for an interactive (CHIME) class", MaxChimeSeats)
		}
	case store.ServiceIVS:
		if c.MaxParticipants < 1 || c.MaxParticipants > MaxIVSSeats {
			return apperr.Field("maxParticipants", "must be 1 to %d for a broadcast (IVS) class", MaxIVSSeats)
		}
	default:
		return apperr.Field("awsService", "must be CHIME or IVS")
	}
	if !c.AccessLevel.Valid() {
		return apperr.Field("accessLevel", "must be STUDENT, MENTOR or ADMIN")
	}
	switch c.Level {
	case store.LevelBeginner, store.LevelIntermediate, store.LevelAdvanced:
	default:
		return apperr.Field("level", "must be BEGINNER, INTERMEDIATE or ADVANCED")
	}
	if n := utf8.RuneCountInString(strings.TrimSpace(c.Category)); n < 1 || n > MaxCategory {
		return apperr.Field("category", "must be 1 to %d characters", MaxCategory)
	}
	if c.Price < 0 {
		return apperr.Field("price", "must not be negative")
	}
	if c.IsFree != (c.Price == 0) {
		return apperr.Field("isFree", "must be true exactly when price is 0")
	}
	if len(c.Tags) > MaxTags {
		return apperr.Field("tags", "at most %d tags", MaxTags)
	}
	for _, t := range c.Tags {
		if n := utf8.RuneCountInString(strings.TrimSpace(t)); n < 1 || n > MaxTag {
			return apperr.Field("tags", "each tag must be 1 to %d characters", MaxTag)
		}
	}
	return nil
}
