package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/liveclass/liveclass/internal/store"
)

// cataloguePageSize is how many upcoming classes one page shows.
const cataloguePageSize = 24

// liveLimit caps the "live now" section; more live classes than this at
// once is a server far larger than one page can show anyway.
const liveLimit = 50

// catalogueFilter is the catalogue's query string.
type catalogueFilter struct {
	Q        string // title search
	Category string
	Level    string
	Tag      string
	Price    string // "", "free" or "paid"
	Next     string
}

type cataloguePage struct {
	base
	Filter   catalogueFilter
	Form     *form
	Live     []classCard
	Upcoming []classCard
	Next     string
	Levels   []store.Level
}

// classCard is a class as a list shows it.
type classCard struct {
	store.LiveClass
	Instructor string
}

func (u *UI) catalogue(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := catalogueFilter{
		Q:        strings.TrimSpace(q.Get("q")),
		Category: strings.TrimSpace(q.Get("category")),
		Level:    q.Get("level"),
		Tag:      strings.TrimSpace(q.Get("tag")),
		Price:    q.Get("price"),
		Next:     q.Get("next"),
	}
	p := cataloguePage{
		base:   u.base(r, "Live classes"),
		Filter: f,
		Form:   newForm(q, "q", "category", "level", "tag", "price"),
		Levels: []store.Level{store.LevelBeginner, store.LevelIntermediate, store.LevelAdvanced},
	}
	common, ok := catalogueConds(f, p.Form)
	if !ok {
		u.render(w, r, "catalogue", http.StatusBadRequest, p)
		return
	}
	now := p.Now
	ctx := r.Context()
	a := p.Actor

	// Live now: LIVE, or SCHEDULED and inside its start and end (nothing
	// has marked it LIVE yet, but people are joining).
	live := store.Filter{
		Conds: common,
		Or: []store.Filter{
			{Conds: []store.Cond{{Field: "status", Op: store.OpEq, Values: []any{string(store.StatusLive)}}}},
			{Conds: []store.Cond{
				{Field: "status", Op: store.OpEq, Values: []any{string(store.StatusScheduled)}},
				{Field: "startTime", Op: store.OpLe, Values: []any{now}},
				{Field: "endTime", Op: store.OpGt, Values: []any{now}},
			}},
		},
	}
	upcoming := store.Filter{Conds: append(slices.Clone(common),
		store.Cond{Field: "status", Op: store.OpEq, Values: []any{string(store.StatusScheduled)}},
		store.Cond{Field: "startTime", Op: store.OpGt, Values: []any{now}},
	)}

	var liveItems []store.LiveClass
	if f.Next == "" { // later pages continue the upcoming list only
		res, err := u.cfg.Classes.ListClasses(ctx, a, store.ClassQuery{Filter: &live, Page: store.Page{Limit: liveLimit}})
		if err != nil {
			u.filterFailed(w, r, &p, err)
			return
		}
		liveItems = res.Items
	}
	res, err := u.cfg.Classes.ListClasses(ctx, a, store.ClassQuery{Filter: &upcoming, Page: store.Page{Limit: cataloguePageSize, After: f.Next}})
	if err != nil {
		u.filterFailed(w, r, &p, err)
		return
	}
	p.Next = res.Next
	byStart := func(x, y store.LiveClass) int { return x.StartTime.Compare(y.StartTime) }
	slices.SortStableFunc(liveItems, byStart)
	slices.SortStableFunc(res.Items, byStart)
	cards, err := u.cards(r, append(liveItems, res.Items...))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	p.Live, p.Upcoming = cards[:len(liveItems)], cards[len(liveItems):]
	u.render(w, r, "catalogue", http.StatusOK, p)
}

// filterFailed shows a bad filter (a stale nextToken, a value the store
// refuses) beside its field instead of an error page.
func (u *UI) filterFailed(w http.ResponseWriter, r *http.Request, p *cataloguePage, err error) {
	if statusOf(err) >= 500 {
		u.fail(w, r, err)
		return
	}
	p.Form.FailErr(err)
	u.render(w, r, "catalogue", statusOf(err), *p)
}

// catalogueConds turns the query string into filter conditions; a value
// that cannot be right is reported beside its field.
func catalogueConds(f catalogueFilter, fm *form) ([]store.Cond, bool) {
	var c []store.Cond
	if f.Q != "" {
		c = append(c, store.Cond{Field: "title", Op: store.OpContains, Values: []any{f.Q}})
	}
	if f.Category != "" {
		c = append(c, store.Cond{Field: "category", Op: store.OpEq, Values: []any{f.Category}})
	}
	switch store.Level(f.Level) {
	case "":
	case store.LevelBeginner, store.LevelIntermediate, store.LevelAdvanced:
		c = append(c, store.Cond{Field: "level", Op: store.OpEq, Values: []any{f.Level}})
	default:
		fm.Fail("level", "Choose Beginner, Intermediate or Advanced.")
	}
	if f.Tag != "" {
		c = append(c, store.Cond{Field: "tags", Op: store.OpContains, Values: []any{f.Tag}})
	}
	switch f.Price {
	case "":
	case "free":
		c = append(c, store.Cond{Field: "isFree", Op: store.OpEq, Values: []any{true}})
	case "paid":
		c = append(c, store.Cond{Field: "isFree", Op: store.OpEq, Values: []any{false}})
	default:
		fm.Fail("price", "Choose free, paid or any.")
	}
	return c, fm.Valid()
}

// cards attaches instructor names to classes with one lookup.
func (u *UI) cards(r *http.Request, cs []store.LiveClass) ([]classCard, error) {
	ids := make([]store.UserID, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.InstructorID)
	}
	names, err := u.names(r, ids)
	if err != nil {
		return nil, err
	}
	out := make([]classCard, len(cs))
	for i, c := range cs {
		out[i] = classCard{LiveClass: c, Instructor: names[c.InstructorID]}
	}
	return out, nil
}

// names returns display names by user id; unknown ids map to "".
func (u *UI) names(r *http.Request, ids []store.UserID) (map[store.UserID]string, error) {
	out := make(map[store.UserID]string, len(ids))
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if len(ids) == 0 {
		return out, nil
	}
	users, err := u.cfg.Auth.UsersByIDs(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	for id, us := range users {
		out[id] = us.Name
	}
	return out, nil
}
