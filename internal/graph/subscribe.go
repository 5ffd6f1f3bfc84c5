package graph

import (
	"context"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/graph/model"
	"github.com/liveclass/liveclass/internal/store"
)

// subscriptionBuffer is how many events a subscription may fall behind
// before the broker drops events for it rather than stall a mutation.
const subscriptionBuffer = 64

// subscribe feeds a subscription from the broker: each event of the wanted
// kind that pick extracts, that the filter matches and that the
// subscriber may see. It runs until the subscription's context ends.
func subscribe[T any](ctx context.Context, r *Resolver, kind classes.EventKind, pick func(classes.Event) *T, rec func(*T) record, f *store.Filter, visible func(context.Context, *T) bool) <-chan *T {
	in := r.cfg.Broker.Subscribe(ctx, subscriptionBuffer)
	out := make(chan *T)
	go func() {
		defer close(out)
		for ev := range in {
			if ev.Kind != kind {
				continue
			}
			v := pick(ev)
			if v == nil || !matches(f, rec(v)) || !visible(ctx, v) {
				continue
			}
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func subFilter(in any) (*store.Filter, error) {
	return toFilter(in, "filter", filterOptions{inMemory: true})
}

func signedIn(a auth.Actor) error {
	if a.Anonymous() {
		return apperr.New(apperr.Unauthenticated, "sign in first")
	}
	return nil
}

func (r *Resolver) subscribeClasses(ctx context.Context, kind classes.EventKind, filter *model.ModelSubscriptionLiveClassFilterInput) (<-chan *store.LiveClass, error) {
	f, err := subFilter(filter)
	if err != nil {
		return nil, err
	}
	now := r.cfg.Classes.Now
	return subscribe(ctx, r, kind,
		func(e classes.Event) *store.LiveClass { return e.Class },
		func(c *store.LiveClass) record { return classRecord(c, now()) },
		f,
		func(context.Context, *store.LiveClass) bool { return true }, // classes are public
	), nil
}

// subscribeEnrollments delivers enrollment changes to their owner, the
// class's instructor and admins; owner, when given, narrows to one user.
func (r *Resolver) subscribeEnrollments(ctx context.Context, kind classes.EventKind, filter *model.ModelSubscriptionLiveClassEnrollmentFilterInput, owner *string) (<-chan *store.Enrollment, error) {
	a := auth.ActorFrom(ctx)
	if err := signedIn(a); err != nil {
		return nil, err
	}
	f, err := subFilter(filter)
	if err != nil {
		return nil, err
	}
	visible := func(ctx context.Context, e *store.Enrollment) bool {
		if owner != nil && string(e.UserID) != *owner {
			return false
		}
		if a.Role == store.RoleAdmin || a.UserID == e.UserID {
			return true
		}
		c, err := r.cfg.Classes.GetClass(ctx, a, e.ClassID)
		return err == nil && c.InstructorID == a.UserID
	}
	return subscribe(ctx, r, kind,
		func(e classes.Event) *store.Enrollment { return e.Enrollment },
		enrollmentRecord, f, visible), nil
}

// subscribeRecordings delivers recording changes to those who may read
// the class's recordings.
func (r *Resolver) subscribeRecordings(ctx context.Context, kind classes.EventKind, filter *model.ModelSubscriptionLiveClassRecordingFilterInput) (<-chan *store.Recording, error) {
	a := auth.ActorFrom(ctx)
	if err := signedIn(a); err != nil {
		return nil, err
	}
	f, err := subFilter(filter)
	if err != nil {
		return nil, err
	}
	visible := func(ctx context.Context, x *store.Recording) bool {
		if a.Role == store.RoleAdmin {
			return true
		}
		c, err := r.cfg.Classes.GetClass(ctx, a, x.ClassID)
		if err != nil {
			return false
		}
		ok, err := r.cfg.Classes.MayReadRecordings(ctx, a, c)
		return err == nil && ok
	}
	return subscribe(ctx, r, kind,
		func(e classes.Event) *store.Recording { return e.Recording },
		recordingRecord, f, visible), nil
}

// subscribeUsers delivers account changes to admins, and to a user about
// their own account.
func (r *Resolver) subscribeUsers(ctx context.Context, kind classes.EventKind, filter *model.ModelSubscriptionUserFilterInput) (<-chan *store.User, error) {
	a := auth.ActorFrom(ctx)
	if err := signedIn(a); err != nil {
		return nil, err
	}
	f, err := subFilter(filter)
	if err != nil {
		return nil, err
	}
	return subscribe(ctx, r, kind,
		func(e classes.Event) *store.User { return e.User },
		userRecord, f,
		func(_ context.Context, u *store.User) bool { return a.Role == store.RoleAdmin || a.UserID == u.ID },
	), nil
}
