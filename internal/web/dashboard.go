package web

import (
	"net/http"
	"slices"

	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/store"
)

// maxDashboardEnrollments bounds what the dashboard reads; a student with
// more enrollments than this sees the most recent pages first.
const maxDashboardEnrollments = 1000

type dashboardPage struct {
	base
	Upcoming []classCard
	Past     []classCard
}

func (u *UI) dashboard(w http.ResponseWriter, r *http.Request) {
	a, ok := requireSignIn(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	var ids []store.ClassID
	q := store.EnrollmentQuery{UserID: a.UserID, Page: store.Page{Limit: classes.MaxPageSize}}
	for len(ids) < maxDashboardEnrollments {
		res, err := u.cfg.Classes.ListEnrollments(ctx, a, q)
		if err != nil {
			u.fail(w, r, err)
			return
		}
		for _, e := range res.Items {
			ids = append(ids, e.ClassID)
		}
		if res.Next == "" {
			break
		}
		q.Page.After = res.Next
	}
	cs, err := u.cfg.Classes.ClassesByIDs(ctx, a, ids)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	cards, err := u.cards(r, cs)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	p := dashboardPage{base: u.base(r, "My classes")}
	for _, c := range cards {
		// A class is still ahead until it ends, unless it was called off.
		if c.EndTime.After(p.Now) && c.Status != store.StatusCancelled && c.Status != store.StatusEnded {
			p.Upcoming = append(p.Upcoming, c)
		} else {
			p.Past = append(p.Past, c)
		}
	}
	slices.SortFunc(p.Upcoming, func(x, y classCard) int { return x.StartTime.Compare(y.StartTime) })
	slices.SortFunc(p.Past, func(x, y classCard) int { return y.StartTime.Compare(x.StartTime) })
	u.render(w, r, "dashboard", http.StatusOK, p)
}
