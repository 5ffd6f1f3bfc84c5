package web

import (
	"net/http"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/store"
)

// joinState says how the class page offers Join.
type joinState int

const (
	joinNone    joinState = iota // not offered
	joinNow                      // a token would be granted now
	joinPending                  // granted when the window opens; revealed by the module
)

type classPage struct {
	base
	Class      store.LiveClass
	Instructor string
	SeatsLeft  int
	Full       bool
	Enrolled   *store.Enrollment
	Hosts      bool // the actor runs the class (instructor or admin)
	Join       joinState
	OpensAt    time.Time
	JoinWhy    string // why Join is not offered, when it helps to say
}

// JoinNow and JoinPending let templates test the join state by name.
func (p classPage) JoinNow() bool { return p.Join == joinNow }

// JoinPending reports whether Join waits for the window to open.
func (p classPage) JoinPending() bool { return p.Join == joinPending }

// Upcoming reports whether the class has yet to start.
func (p classPage) Upcoming() bool { return p.Class.IsUpcoming(p.Now) }

// Over reports whether the class has ended, by status or by the clock
// (a class nobody marked ENDED is still over after its end time).
func (p classPage) Over() bool {
	return p.Class.Status == store.StatusEnded || !p.Now.Before(p.Class.EndTime)
}

// Open reports whether enrollment can still change.
func (p classPage) Open() bool {
	return (p.Class.Status == store.StatusScheduled || p.Class.Status == store.StatusLive) && !p.Over()
}

func (u *UI) classPage(w http.ResponseWriter, r *http.Request) {
	p, err := u.loadClassPage(r, store.ClassID(r.PathValue("id")))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.render(w, r, "class", http.StatusOK, p)
}

func (u *UI) loadClassPage(r *http.Request, id store.ClassID) (classPage, error) {
	ctx := r.Context()
	a := auth.ActorFrom(ctx)
	c, err := u.cfg.Classes.GetClass(ctx, a, id)
	if err != nil {
		return classPage{}, err
	}
	p := classPage{base: u.base(r, c.Title), Class: c, SeatsLeft: seatsLeft(c)}
	p.Full = p.SeatsLeft == 0
	names, err := u.names(r, []store.UserID{c.InstructorID})
	if err != nil {
		return classPage{}, err
	}
	p.Instructor = names[c.InstructorID]
	if a.Anonymous() {
		return p, nil
	}
	p.Hosts = a.Is(store.RoleAdmin) || a.UserID == c.InstructorID
	e, err := u.cfg.Classes.GetEnrollmentFor(ctx, a, a.UserID, c.ID)
	switch {
	case err == nil:
		p.Enrolled = &e
	case apperr.Is(err, apperr.NotFound):
	default:
		return classPage{}, err
	}
	p.Join, p.OpensAt, p.JoinWhy = u.joinState(r, a, c)
	return p, nil
}

// joinState decides Join exactly as generateLiveClassToken would: shown
// when CanJoin passes now; shown when the window opens if time is the only
// obstacle, which CanJoinAt at the opening moment tells.
func (u *UI) joinState(r *http.Request, a auth.Actor, c store.LiveClass) (joinState, time.Time, string) {
	ctx := r.Context()
	err := u.cfg.Classes.CanJoin(ctx, a, c)
	if err == nil {
		return joinNow, time.Time{}, ""
	}
	opens, _ := u.cfg.Classes.JoinWindow(c)
	if u.cfg.Classes.Now().Before(opens) && u.cfg.Classes.CanJoinAt(ctx, a, c, opens) == nil {
		return joinPending, opens, ""
	}
	if apperr.KindOf(err) == apperr.Internal {
		u.log.Error("join check", "class", c.ID, "user", a.UserID, "err", err)
		return joinNone, time.Time{}, ""
	}
	return joinNone, time.Time{}, message(err)
}

func (u *UI) enroll(w http.ResponseWriter, r *http.Request) {
	u.changeEnrollment(w, r, func(a auth.Actor, id store.ClassID, _ *store.Enrollment) error {
		_, err := u.cfg.Classes.Enroll(r.Context(), a, id, "")
		return err
	})
}

func (u *UI) unenroll(w http.ResponseWriter, r *http.Request) {
	u.changeEnrollment(w, r, func(a auth.Actor, _ store.ClassID, e *store.Enrollment) error {
		if e == nil {
			return nil // already not enrolled: the wish is met
		}
		_, err := u.cfg.Classes.Unenroll(r.Context(), a, e.ID)
		return err
	})
}

// changeEnrollment runs change for the signed-in actor and redirects back
// to the class page, or re-renders it with the reason in plain words.
func (u *UI) changeEnrollment(w http.ResponseWriter, r *http.Request, change func(auth.Actor, store.ClassID, *store.Enrollment) error) {
	a, ok := requireSignIn(w, r)
	if !ok {
		return
	}
	if !u.postForm(w, r) {
		return
	}
	id := store.ClassID(r.PathValue("id"))
	p, err := u.loadClassPage(r, id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if err := change(a, id, p.Enrolled); err != nil {
		if apperr.KindOf(err) == apperr.Internal {
			u.fail(w, r, err)
			return
		}
		// Reload: the refusal may come from a change made meanwhile (the
		// last seat taken), which the page should show too.
		if fresh, lerr := u.loadClassPage(r, id); lerr == nil {
			p = fresh
		}
		p.Alert = enrollMessage(err, p.Class)
		u.render(w, r, "class", statusOf(err), p)
		return
	}
	http.Redirect(w, r, "/classes/"+string(id), http.StatusSeeOther)
}

// enrollMessage says why enrolling failed in the words a student needs.
func enrollMessage(err error, c store.LiveClass) string {
	switch {
	case apperr.Is(err, apperr.Conflict) && c.EnrolledCount >= c.MaxParticipants && c.Status != store.StatusCancelled && c.Status != store.StatusEnded:
		return "This class is full."
	case apperr.Is(err, apperr.Forbidden) && c.Price > 0:
		return "This is a paid class: ask the instructor to enroll you."
	}
	return message(err)
}
