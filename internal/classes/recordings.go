package classes

import (
	"context"
	"strings"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/store"
)

// Recordings are readable by those who may see the class: admins, its
// instructor and its enrolled students. That is stricter than the guide's
// "any signed-in user": a recording shows the faces and voices of the
// students who were there, and a paid class's content is what was paid for.

// MayReadRecordings reports whether a may read c's recordings.
func (s *Service) MayReadRecordings(ctx context.Context, a auth.Actor, c store.LiveClass) (bool, error) {
	if a.Anonymous() {
		return false, nil
	}
	if hosts(a, c) {
		return true, nil
	}
	_, err := s.st.EnrollmentByUserClass(ctx, a.UserID, c.ID)
	if apperr.Is(err, apperr.NotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s *Service) checkReadRecordings(ctx context.Context, a auth.Actor, c store.LiveClass) error {
	if err := signedIn(a); err != nil {
		return err
	}
	ok, err := s.MayReadRecordings(ctx, a, c)
	if err != nil {
		return err
	}
	if !ok {
		return apperr.New(apperr.Forbidden, "recordings are for the class's students, its instructor and admins")
	}
	return nil
}

// writableClass returns the class a recording belongs to, if a may write
// its recordings: admins, and mentors for the classes they teach.
func (s *Service) writableClass(ctx context.Context, a auth.Actor, id store.ClassID) (store.LiveClass, error) {
	if err := signedIn(a); err != nil {
		return store.LiveClass{}, err
	}
	if !a.Is(store.RoleMentor) && !a.Is(store.RoleAdmin) {
		return store.LiveClass{}, apperr.New(apperr.Forbidden, "only mentors and admins manage recordings")
	}
	return s.hostedClass(ctx, a, id, "recordings")
}

// writableRecording returns recording id, if a may change it: it is
// checked against the class the recording belongs to now.
func (s *Service) writableRecording(ctx context.Context, a auth.Actor, id store.RecordingID) (store.Recording, error) {
	if err := signedIn(a); err != nil {
		return store.Recording{}, err
	}
	r, err := s.st.RecordingByID(ctx, id)
	if err != nil {
		return store.Recording{}, err
	}
	if _, err := s.writableClass(ctx, a, r.ClassID); err != nil {
		return store.Recording{}, err
	}
	return r, nil
}

func validateRecording(r store.Recording) error {
	switch {
	case strings.TrimSpace(r.S3Key) == "":
		return apperr.Field("s3Key", "is required")
	case strings.TrimSpace(r.S3Bucket) == "":
		return apperr.Field("s3Bucket", "is required")
	case r.Duration < 0:
		return apperr.Field("duration", "must not be negative")
	}
	return nil
}

// CreateRecording adds a recording; admins and the class's instructor may.
func (s *Service) CreateRecording(ctx context.Context, a auth.Actor, in RecordingInput) (store.Recording, error) {
	if _, err := s.writableClass(ctx, a, in.ClassID); err != nil {
		return store.Recording{}, err
	}
	now := s.opt.Now()
	r := store.Recording{
		ID:            store.RecordingID(s.opt.NewID()),
		ClassID:       in.ClassID,
		ThumbnailURL:  in.ThumbnailURL,
		TranscriptURL: in.TranscriptURL,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	set(&r.S3Key, in.S3Key)
	set(&r.S3Bucket, in.S3Bucket)
	if in.Duration == nil {
		return store.Recording{}, apperr.Field("duration", "is required")
	}
	r.Duration = *in.Duration
	if err := validateRecording(r); err != nil {
		return store.Recording{}, err
	}
	if err := s.st.CreateRecording(ctx, &r); err != nil {
		return store.Recording{}, err
	}
	s.publish(Event{Kind: Created, Recording: &r})
	return r, nil
}

// GetRecording returns a recording to those who may see its class's recordings.
func (s *Service) GetRecording(ctx context.Context, a auth.Actor, id store.RecordingID) (store.Recording, error) {
	if err := signedIn(a); err != nil {
		return store.Recording{}, err
	}
	r, err := s.st.RecordingByID(ctx, id)
	if err != nil {
		return store.Recording{}, err
	}
	c, err := s.st.ClassByID(ctx, r.ClassID)
	if err != nil {
		return store.Recording{}, err
	}
	if err := s.checkReadRecordings(ctx, a, c); err != nil {
		return store.Recording{}, err
	}
	return r, nil
}

// ListRecordings lists the recordings the actor may see. Asking for one
// class's recordings without access is forbidden; a list across classes
// drops what the actor may not see after the page is read, as AppSync
// filters after DynamoDB's limit, so a page may come back short with a
// nextToken.
func (s *Service) ListRecordings(ctx context.Context, a auth.Actor, q store.RecordingQuery) (store.List[store.Recording], error) {
	var none store.List[store.Recording]
	if err := signedIn(a); err != nil {
		return none, err
	}
	if err := checkPage(&q.Page); err != nil {
		return none, err
	}
	if q.ClassID != "" {
		c, err := s.st.ClassByID(ctx, q.ClassID)
		if err != nil {
			return none, err
		}
		if err := s.checkReadRecordings(ctx, a, c); err != nil {
			return none, err
		}
		return s.st.ListRecordings(ctx, q)
	}
	l, err := s.st.ListRecordings(ctx, q)
	if err != nil || a.Is(store.RoleAdmin) {
		return l, err
	}
	ids := make([]store.ClassID, 0, len(l.Items))
	for _, r := range l.Items {
		ids = append(ids, r.ClassID)
	}
	visible, err := s.RecordingsOfClasses(ctx, a, ids)
	if err != nil {
		return none, err
	}
	kept := l.Items[:0]
	for _, r := range l.Items {
		if _, ok := visible[r.ClassID]; ok {
			kept = append(kept, r)
		}
	}
	l.Items = kept
	return l, nil
}

// RecordingsOfClasses returns, per class the actor may see recordings of,
// that class's recordings (possibly none); classes it may not see are
// absent from the map.
func (s *Service) RecordingsOfClasses(ctx context.Context, a auth.Actor, ids []store.ClassID) (map[store.ClassID][]store.Recording, error) {
	out := make(map[store.ClassID][]store.Recording, len(ids))
	if a.Anonymous() || len(ids) == 0 {
		return out, nil
	}
	classes, err := s.st.ClassesByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	var enrolled map[store.ClassID]bool
	if !a.Is(store.RoleAdmin) {
		// One query for the actor's seats in these classes, not one per class.
		all, err := s.st.EnrollmentsByClassIDs(ctx, ids)
		if err != nil {
			return nil, err
		}
		enrolled = make(map[store.ClassID]bool)
		for _, e := range all {
			if e.UserID == a.UserID {
				enrolled[e.ClassID] = true
			}
		}
	}
	for _, c := range classes {
		if hosts(a, c) || enrolled[c.ID] {
			out[c.ID] = nil
		}
	}
	recs, err := s.st.RecordingsByClassIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if rs, ok := out[r.ClassID]; ok {
			out[r.ClassID] = append(rs, r)
		}
	}
	return out, nil
}

// UpdateRecording changes a recording; admins and the class's instructor may.
func (s *Service) UpdateRecording(ctx context.Context, a auth.Actor, id store.RecordingID, in RecordingInput) (store.Recording, error) {
	r, err := s.writableRecording(ctx, a, id)
	if err != nil {
		return store.Recording{}, err
	}
	if in.ClassID != "" && in.ClassID != r.ClassID {
		// Moving a recording to another class needs write access there too.
		if _, err := s.writableClass(ctx, a, in.ClassID); err != nil {
			return store.Recording{}, err
		}
		r.ClassID = in.ClassID
	}
	set(&r.S3Key, in.S3Key)
	set(&r.S3Bucket, in.S3Bucket)
	set(&r.Duration, in.Duration)
	if in.ThumbnailURL != nil {
		r.ThumbnailURL = in.ThumbnailURL
	}
	if in.TranscriptURL != nil {
		r.TranscriptURL = in.TranscriptURL
	}
	if err := validateRecording(r); err != nil {
		return store.Recording{}, err
	}
	r.UpdatedAt = s.opt.Now()
	if err := s.st.UpdateRecording(ctx, r); err != nil {
		return store.Recording{}, err
	}
	s.publish(Event{Kind: Updated, Recording: &r})
	return r, nil
}

// DeleteRecording deletes a recording; admins and the class's instructor may.
func (s *Service) DeleteRecording(ctx context.Context, a auth.Actor, id store.RecordingID) (store.Recording, error) {
	r, err := s.writableRecording(ctx, a, id)
	if err != nil {
		return store.Recording{}, err
	}
	if err := s.st.DeleteRecording(ctx, id); err != nil {
		return store.Recording{}, err
	}
	s.publish(Event{Kind: Deleted, Recording: &r})
	return r, nil
}
