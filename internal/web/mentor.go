package web

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones from the browser resolve on any host

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/store"
)

// classFields are the class form's inputs, named as in the GraphQL schema
// so that a domain error's field places the message beside its input.
func classFields() []string {
	return []string{
		"title", "description", "startTime", "endTime", "awsService", "maxParticipants",
		"category", "level", "accessLevel", "requiresEnrollment", "price", "tags", "timeZone",
	}
}

// What a datetime-local input sends: with seconds when its step allows
// them (ours does), without when the browser leaves them out.
const (
	localLayout        = "2006-01-02T15:04:05"
	localLayoutMinutes = "2006-01-02T15:04"
)

type mentorPage struct {
	base
	Classes []classCard
	Next    string
}

// mayTeach refuses everyone but mentors and admins.
func (u *UI) mayTeach(w http.ResponseWriter, r *http.Request) (auth.Actor, bool) {
	a, ok := requireSignIn(w, r)
	if !ok {
		return a, false
	}
	if !a.Is(store.RoleMentor) && !a.Is(store.RoleAdmin) {
		u.forbid(w, r, "Only mentors and admins teach classes.")
		return a, false
	}
	return a, true
}

func (u *UI) mentor(w http.ResponseWriter, r *http.Request) {
	if _, ok := u.mayTeach(w, r); !ok {
		return
	}
	p, err := u.loadMentor(r, r.URL.Query().Get("next"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	switch r.URL.Query().Get("done") {
	case "created":
		p.Notice = "The class is scheduled."
	case "saved":
		p.Notice = "Your changes are saved."
	case "cancelled":
		p.Notice = "The class is cancelled. Its enrollments are kept."
	}
	u.render(w, r, "mentor", http.StatusOK, p)
}

func (u *UI) loadMentor(r *http.Request, after string) (mentorPage, error) {
	a := auth.ActorFrom(r.Context())
	res, err := u.cfg.Classes.ListClasses(r.Context(), a, store.ClassQuery{
		InstructorID: a.UserID,
		Page:         store.Page{Limit: 50, After: after},
	})
	if err != nil {
		return mentorPage{}, err
	}
	cards, err := u.cards(r, res.Items)
	if err != nil {
		return mentorPage{}, err
	}
	return mentorPage{base: u.base(r, "Teaching"), Classes: cards, Next: res.Next}, nil
}

// classFormPage is the create and edit form.
type classFormPage struct {
	base
	Form     *form
	Class    *store.LiveClass // nil when creating
	Action   string
	Levels   []store.Level
	Roles    []store.Role
	Services []store.Service
}

func (u *UI) classForm(r *http.Request, f *form, c *store.LiveClass) classFormPage {
	title, action := "New class", "/mentor/classes/new"
	if c != nil {
		title, action = "Edit "+c.Title, "/mentor/classes/"+string(c.ID)+"/edit"
	}
	return classFormPage{
		base:     u.base(r, title),
		Form:     f,
		Class:    c,
		Action:   action,
		Levels:   []store.Level{store.LevelBeginner, store.LevelIntermediate, store.LevelAdvanced},
		Roles:    []store.Role{store.RoleStudent, store.RoleMentor, store.RoleAdmin},
		Services: []store.Service{store.ServiceChime, store.ServiceIVS},
	}
}

func (u *UI) newClassForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := u.mayTeach(w, r); !ok {
		return
	}
	// A sensible start: the next full hour, for one hour, in UTC (the
	// module moves the times into the reader's zone).
	start := u.cfg.Classes.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	f := newForm(nil, classFields()...)
	f.Values.Set("startTime", start.Format(localLayout))
	f.Values.Set("endTime", start.Add(time.Hour).Format(localLayout))
	f.Values.Set("timeZone", "UTC")
	f.Values.Set("awsService", string(store.ServiceChime))
	f.Values.Set("maxParticipants", "20")
	f.Values.Set("level", string(store.LevelBeginner))
	f.Values.Set("accessLevel", string(store.RoleStudent))
	f.Values.Set("requiresEnrollment", "on")
	f.Values.Set("price", "0")
	u.render(w, r, "classform", http.StatusOK, u.classForm(r, f, nil))
}

func (u *UI) createClass(w http.ResponseWriter, r *http.Request) {
	a, ok := u.mayTeach(w, r)
	if !ok {
		return
	}
	if !u.postForm(w, r) {
		return
	}
	f := newForm(r.PostForm, classFields()...)
	in := parseClassForm(f)
	if !f.Valid() {
		u.render(w, r, "classform", http.StatusBadRequest, u.classForm(r, f, nil))
		return
	}
	c, err := u.cfg.Classes.CreateClass(r.Context(), a, classes.ClassInput{
		Title:              in.Title,
		Description:        in.Description,
		StartTime:          in.StartTime,
		EndTime:            in.EndTime,
		Service:            in.Service,
		RequiresEnrollment: in.RequiresEnrollment,
		AccessLevel:        in.AccessLevel,
		MaxParticipants:    in.MaxParticipants,
		Category:           in.Category,
		Level:              in.Level,
		Price:              in.Price,
		IsFree:             in.IsFree,
		Tags:               in.Tags,
	})
	if err != nil {
		if statusOf(err) >= 500 {
			u.fail(w, r, err)
			return
		}
		f.FailErr(err)
		u.render(w, r, "classform", statusOf(err), u.classForm(r, f, nil))
		return
	}
	u.log.Info("class created", "class", c.ID, "user", a.UserID)
	http.Redirect(w, r, "/mentor?done=created", http.StatusSeeOther)
}

// hostedClass loads a class the actor may change: its instructor or an
// admin; anyone else gets the 403 page.
func (u *UI) hostedClass(w http.ResponseWriter, r *http.Request) (auth.Actor, store.LiveClass, bool) {
	a, ok := u.mayTeach(w, r)
	if !ok {
		return a, store.LiveClass{}, false
	}
	c, err := u.cfg.Classes.GetClass(r.Context(), a, store.ClassID(r.PathValue("id")))
	if err != nil {
		u.fail(w, r, err)
		return a, store.LiveClass{}, false
	}
	if !a.Is(store.RoleAdmin) && c.InstructorID != a.UserID {
		u.forbid(w, r, "Only the class's instructor or an admin may change it.")
		return a, store.LiveClass{}, false
	}
	return a, c, true
}

func (u *UI) editClassForm(w http.ResponseWriter, r *http.Request) {
	_, c, ok := u.hostedClass(w, r)
	if !ok {
		return
	}
	f := newForm(nil, classFields()...)
	f.Values.Set("title", c.Title)
	if c.Description != nil {
		f.Values.Set("description", *c.Description)
	}
	f.Values.Set("startTime", c.StartTime.UTC().Format(localLayout))
	f.Values.Set("endTime", c.EndTime.UTC().Format(localLayout))
	f.Values.Set("timeZone", "UTC")
	f.Values.Set("awsService", string(c.Service))
	f.Values.Set("maxParticipants", strconv.Itoa(c.MaxParticipants))
	f.Values.Set("category", c.Category)
	f.Values.Set("level", string(c.Level))
	f.Values.Set("accessLevel", string(c.AccessLevel))
	if c.RequiresEnrollment {
		f.Values.Set("requiresEnrollment", "on")
	}
	f.Values.Set("price", strconv.FormatFloat(c.Price, 'f', -1, 64))
	f.Values.Set("tags", strings.Join(c.Tags, ", "))
	u.render(w, r, "classform", http.StatusOK, u.classForm(r, f, &c))
}

func (u *UI) updateClass(w http.ResponseWriter, r *http.Request) {
	a, c, ok := u.hostedClass(w, r)
	if !ok {
		return
	}
	if !u.postForm(w, r) {
		return
	}
	f := newForm(r.PostForm, classFields()...)
	in := parseClassForm(f)
	if !f.Valid() {
		u.render(w, r, "classform", http.StatusBadRequest, u.classForm(r, f, &c))
		return
	}
	p := classes.ClassPatch{
		Title:              &in.Title,
		Description:        in.Description,
		Service:            &in.Service,
		RequiresEnrollment: &in.RequiresEnrollment,
		AccessLevel:        &in.AccessLevel,
		MaxParticipants:    &in.MaxParticipants,
		Category:           &in.Category,
		Level:              &in.Level,
		Price:              &in.Price,
		IsFree:             &in.IsFree,
		Tags:               in.Tags,
		TagsSet:            true,
	}
	if p.Description == nil && c.Description != nil {
		empty := ""
		p.Description = &empty
	}
	// The form shows times to the second: only a time that really moved is
	// a reschedule, so that editing the title of an ended class works.
	if !in.StartTime.Equal(c.StartTime.Truncate(time.Second)) {
		p.StartTime = &in.StartTime
	}
	if !in.EndTime.Equal(c.EndTime.Truncate(time.Second)) {
		p.EndTime = &in.EndTime
	}
	if _, err := u.cfg.Classes.UpdateClass(r.Context(), a, c.ID, p); err != nil {
		if statusOf(err) >= 500 {
			u.fail(w, r, err)
			return
		}
		f.FailErr(err)
		u.render(w, r, "classform", statusOf(err), u.classForm(r, f, &c))
		return
	}
	http.Redirect(w, r, "/mentor?done=saved", http.StatusSeeOther)
}

func (u *UI) cancelClass(w http.ResponseWriter, r *http.Request) {
	a, c, ok := u.hostedClass(w, r)
	if !ok {
		return
	}
	if !u.postForm(w, r) {
		return
	}
	cancelled := store.StatusCancelled
	_, err := u.cfg.Classes.UpdateClass(r.Context(), a, c.ID, classes.ClassPatch{Managed: classes.Managed{Status: &cancelled}})
	if err != nil {
		p, lerr := u.loadMentor(r, "")
		if lerr != nil || statusOf(err) >= 500 {
			u.fail(w, r, err)
			return
		}
		p.Alert = c.Title + ": " + message(err)
		u.render(w, r, "mentor", statusOf(err), p)
		return
	}
	u.log.Info("class cancelled", "class", c.ID, "user", a.UserID)
	http.Redirect(w, r, "/mentor?done=cancelled", http.StatusSeeOther)
}

// enrollmentsPage lists who is enrolled in a class.
type enrollmentsPage struct {
	base
	Class    store.LiveClass
	Students []enrolledStudent
}

type enrolledStudent struct {
	Name       string
	EnrolledAt time.Time
}

func (u *UI) enrollments(w http.ResponseWriter, r *http.Request) {
	a, c, ok := u.hostedClass(w, r)
	if !ok {
		return
	}
	byClass, err := u.cfg.Classes.EnrollmentsOfClasses(r.Context(), a, []store.ClassID{c.ID})
	if err != nil {
		u.fail(w, r, err)
		return
	}
	es := byClass[c.ID]
	ids := make([]store.UserID, len(es))
	for i, e := range es {
		ids[i] = e.UserID
	}
	names, err := u.names(r, ids)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	p := enrollmentsPage{base: u.base(r, "Enrolled in "+c.Title), Class: c}
	for _, e := range es {
		p.Students = append(p.Students, enrolledStudent{Name: names[e.UserID], EnrolledAt: e.EnrolledAt})
	}
	slices.SortFunc(p.Students, func(x, y enrolledStudent) int { return x.EnrolledAt.Compare(y.EnrolledAt) })
	u.render(w, r, "enrollments", http.StatusOK, p)
}

// classInput is the parsed class form.
type classInput struct {
	Title              string
	Description        *string
	StartTime, EndTime time.Time
	Service            store.Service
	RequiresEnrollment bool
	AccessLevel        store.Role
	MaxParticipants    int
	Category           string
	Level              store.Level
	Price              float64
	IsFree             bool
	Tags               []string
}

// parseClassForm reads what the browser sent; what cannot even be parsed
// is reported beside its field here, the rest by the domain rules.
func parseClassForm(f *form) classInput {
	in := classInput{
		Title:              strings.TrimSpace(f.Get("title")),
		Service:            store.Service(f.Get("awsService")),
		RequiresEnrollment: f.Has("requiresEnrollment"),
		AccessLevel:        store.Role(f.Get("accessLevel")),
		Category:           strings.TrimSpace(f.Get("category")),
		Level:              store.Level(f.Get("level")),
	}
	if d := strings.TrimSpace(f.Get("description")); d != "" {
		in.Description = &d
	}
	loc, err := time.LoadLocation(orDefault(f.Get("timeZone"), "UTC"))
	if err != nil {
		f.Fail("startTime", "Unknown time zone "+strconv.Quote(f.Get("timeZone"))+".")
		loc = time.UTC
	}
	in.StartTime = parseLocal(f, "startTime", loc)
	in.EndTime = parseLocal(f, "endTime", loc)
	if n, err := strconv.Atoi(strings.TrimSpace(f.Get("maxParticipants"))); err != nil {
		f.Fail("maxParticipants", "Enter a whole number of seats.")
	} else {
		in.MaxParticipants = n
	}
	price := strings.TrimSpace(f.Get("price"))
	if price == "" {
		price = "0"
	}
	if p, err := strconv.ParseFloat(price, 64); err != nil {
		f.Fail("price", "Enter a price such as 0 or 25.50.")
	} else {
		in.Price = p
		// The form derives isFree from the price, so the rule "free
		// exactly when the price is 0" cannot be broken from here.
		in.IsFree = p == 0
	}
	in.Tags = []string{}
	for t := range strings.SplitSeq(f.Get("tags"), ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(in.Tags, t) {
			in.Tags = append(in.Tags, t)
		}
	}
	return in
}

func parseLocal(f *form, field string, loc *time.Location) time.Time {
	v := strings.TrimSpace(f.Get(field))
	if v == "" {
		f.Fail(field, "Choose a date and time.")
		return time.Time{}
	}
	for _, l := range [...]string{localLayout, localLayoutMinutes} {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t
		}
	}
	f.Fail(field, "Enter a date and time such as 2026-05-01T14:30.")
	return time.Time{}
}
