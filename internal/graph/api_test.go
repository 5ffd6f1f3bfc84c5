package graph_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestNestedFieldsAreBatched: a page of classes with their instructors,
// enrollments and the enrolled users costs the same number of store reads
// for 5 classes as for 20: one per level, not one per parent.
func TestNestedFieldsAreBatched(t *testing.T) {
	const q = `query($n: Int) { listLiveClasses(limit: $n) { items {
		id instructor { name } enrollments { items { user { name } liveClass { id } } } recordings { items { id } } } } }`
	e := newEnv(t, envOptions{})
	reads := func(n int) int64 {
		t.Helper()
		before := e.st.reads.Load()
		var got struct {
			ListLiveClasses struct {
				Items []struct {
					Instructor  struct{ Name string }
					Enrollments struct {
						Items []struct{ User struct{ Name string } }
					}
				}
			}
		}
		e.mustOK(e.do(admin, q, map[string]any{"n": n}), &got)
		items := got.ListLiveClasses.Items
		if len(items) != n {
			t.Fatalf("got %d classes, want %d", len(items), n)
		}
		for _, it := range items {
			if it.Instructor.Name == "" || len(it.Enrollments.Items) != 2 || it.Enrollments.Items[0].User.Name == "" {
				t.Fatalf("nested fields not resolved: %+v", it)
			}
		}
		return e.st.reads.Load() - before
	}
	for i := 0; i < 20; i++ {
		c := e.newClass(classSpec{instructor: []string{mentorOwn, mentorOther}[i%2], startIn: time.Hour})
		e.enroll(student, c)
		e.enroll(mentorOther, c)
		e.newRecording(c)
	}
	small, large := reads(5), reads(20)
	t.Logf("store reads: %d for 5 classes, %d for 20", small, large)
	if small != large {
		t.Errorf("store reads grow with the page: %d for 5 classes, %d for 20", small, large)
	}
	if large > 10 {
		t.Errorf("%d store reads for one page; want a few per nesting level", large)
	}
}

// TestValidation: every rule answers BAD_USER_INPUT naming the field.
func TestValidation(t *testing.T) {
	e := newEnv(t, envOptions{})
	const create = `mutation($in: CreateLiveClassInput!) { createLiveClass(input: $in) { id } }`
	with := func(changes map[string]any) map[string]any {
		in := classInputVars()
		for k, v := range changes {
			if v == nil {
				delete(in, k)
			} else {
				in[k] = v
			}
		}
		return map[string]any{"in": in}
	}
	start := time.Now().Add(24 * time.Hour).UTC()
	tags := make([]string, 21)
	for i := range tags {
		tags[i] = fmt.Sprint("t", i)
	}
	cases := []struct {
		name  string
		query string
		vars  map[string]any
		field string
	}{
		{"empty title", create, with(map[string]any{"title": ""}), "title"},
		{"long title", create, with(map[string]any{"title": strings.Repeat("x", 201)}), "title"},
		{"end before start", create, with(map[string]any{"endTime": start.Add(-time.Hour).Format(time.RFC3339)}), "endTime"},
		{"wrong duration", create, with(map[string]any{"duration": 5}), "duration"},
		{"chime seats", create, with(map[string]any{"maxParticipants": 51}), "maxParticipants"},
		{"no seats", create, with(map[string]any{"maxParticipants": 0}), "maxParticipants"},
		{"negative price", create, with(map[string]any{"price": -1, "isFree": false}), "price"},
		{"isFree with price", create, with(map[string]any{"price": 10, "isFree": true}), "isFree"},
		{"too many tags", create, with(map[string]any{"tags": tags}), "tags"},
		{"long tag", create, with(map[string]any{"tags": []string{strings.Repeat("x", 41)}}), "tags"},
		{"managed status", create, with(map[string]any{"status": "LIVE"}), "status"},
		{"managed isLive", create, with(map[string]any{"isLive": true}), "isLive"},
		{"managed participants", create, with(map[string]any{"currentParticipants": 3}), "currentParticipants"},
		{"bad date-time", create, with(map[string]any{"startTime": "tomorrow"}), "startTime"},
		{"limit above 100", `{ listLiveClasses(limit: 101) { items { id } } }`, nil, "limit"},
		{"limit zero", `{ listLiveClasses(limit: 0) { items { id } } }`, nil, "limit"},
		{"filter size", `{ listLiveClasses(filter: {title: {size: {eq: 3}}}) { items { id } } }`, nil, "filter.title.size"},
		{"filter attributeType", `{ listLiveClasses(filter: {title: {attributeType: string}}) { items { id } } }`, nil, "filter.title.attributeType"},
		{"filter bad time", `{ listLiveClasses(filter: {startTime: {gt: "soon"}}) { items { id } } }`, nil, "filter.startTime.gt"},
		{"between one value", `{ listLiveClasses(filter: {duration: {between: [1]}}) { items { id } } }`, nil, "filter.duration.between"},
		{"enrollment lookup without keys", `{ getLiveClassEnrollment { id } }`, nil, "id"},
		{"enrollment lookup half key", `query($u: ID) { getLiveClassEnrollment(userId: $u) { id } }`, map[string]any{"u": "x"}, "liveClassId"},
		{"enrollment feedback on create", `mutation { createLiveClassEnrollment(input: {liveClassId: "x", feedback: "hi"}) { id } }`, nil, "feedback"},
		{"bad email", `mutation { createUser(input: {name: "A", email: "not-an-email"}) { id } }`, nil, "email"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			r := e.do(admin, tc.query, tc.vars)
			if r.code() != "BAD_USER_INPUT" {
				t.Fatalf("got %s (%+v), want BAD_USER_INPUT", r.code(), r.Errors)
			}
			if r.field() != tc.field {
				t.Errorf("field %q, want %q (%s)", r.field(), tc.field, r.Errors[0].Message)
			}
		})
	}
	// Nothing above was stored.
	var got struct {
		ListLiveClasses struct{ Items []struct{ ID string } }
	}
	e.t = t
	e.mustOK(e.do(admin, `{ listLiveClasses { items { id } } }`, nil), &got)
	if n := len(got.ListLiveClasses.Items); n != 0 {
		t.Errorf("%d classes stored by invalid requests", n)
	}
}

// TestFiltersAndPaging: Amplify filters with and / or / not, typed time
// comparisons, and nextToken paging through the API.
func TestFiltersAndPaging(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i := 0; i < 7; i++ {
		e.newClass(classSpec{startIn: time.Duration(i+1) * time.Hour, title: fmt.Sprintf("Go %d", i),
			category: []string{"go", "rust"}[i%2], tags: []string{fmt.Sprint("week", i)}})
	}
	ids := func(query string, vars map[string]any) ([]string, *string) {
		t.Helper()
		var got struct {
			ListLiveClasses struct {
				Items     []struct{ Title string }
				NextToken *string
			}
		}
		e.mustOK(e.do(anon, query, vars), &got)
		var out []string
		for _, it := range got.ListLiveClasses.Items {
			out = append(out, it.Title)
		}
		return out, got.ListLiveClasses.NextToken
	}
	count := func(filter string) int {
		t.Helper()
		got, _ := ids(`{ listLiveClasses(filter: `+filter+`) { items { title } } }`, nil)
		return len(got)
	}
	later := time.Now().Add(3*time.Hour + 30*time.Minute).In(time.FixedZone("X", 2*3600)).Format(time.RFC3339)
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{`{category: {eq: "go"}}`, 4},
		{`{category: {ne: "go"}}`, 3},
		{`{title: {beginsWith: "Go "}}`, 7},
		{`{title: {contains: "3"}}`, 1},
		{`{tags: {contains: "week2"}}`, 1},
		{`{startTime: {gt: "` + later + `"}}`, 4},
		{`{and: [{category: {eq: "go"}}, {title: {eq: "Go 0"}}]}`, 1},
		{`{or: [{title: {eq: "Go 1"}}, {title: {eq: "Go 2"}}]}`, 2},
		{`{not: {category: {eq: "go"}}}`, 3},
		{`{isUpcoming: {eq: true}}`, 7},
		{`{duration: {between: [60, 60]}}`, 7},
	} {
		if got := count(tc.filter); got != tc.want {
			t.Errorf("filter %s: %d classes, want %d", tc.filter, got, tc.want)
		}
	}
	var all []string
	var next *string
	for page := 0; ; page++ {
		got, n := ids(`query($t: String) { listLiveClasses(limit: 3, nextToken: $t) { items { title } nextToken } }`, map[string]any{"t": next})
		if len(got) > 3 || page > 5 {
			t.Fatalf("page %d has %d items", page, len(got))
		}
		all = append(all, got...)
		if n == nil {
			break
		}
		next = n
	}
	if len(all) != 7 {
		t.Errorf("paging returned %d classes, want 7: %v", len(all), all)
	}
	seen := map[string]bool{}
	for _, x := range all {
		if seen[x] {
			t.Errorf("%s on two pages", x)
		}
		seen[x] = true
	}
}

// TestConditions: a mutation's condition is checked on the stored record.
func TestConditions(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.newClass(classSpec{startIn: time.Hour, title: "Before"})
	const q = `mutation($id: ID!, $cond: ModelLiveClassConditionInput) {
		updateLiveClass(input: {id: $id, title: "After"}, condition: $cond) { title } }`
	r := e.do(mentorOwn, q, map[string]any{"id": c.ID, "cond": map[string]any{"title": map[string]any{"eq": "Other"}}})
	if r.code() != "CONFLICT" {
		t.Fatalf("failing condition: got %s, want CONFLICT", r.code())
	}
	var got struct{ UpdateLiveClass struct{ Title string } }
	e.mustOK(e.do(mentorOwn, q, map[string]any{"id": c.ID, "cond": map[string]any{
		"and": []any{map[string]any{"title": map[string]any{"eq": "Before"}}, map[string]any{"status": map[string]any{"eq": "SCHEDULED"}}}}}), &got)
	if got.UpdateLiveClass.Title != "After" {
		t.Errorf("title %q after a holding condition", got.UpdateLiveClass.Title)
	}
}

// TestOutputFormats: AWSDateTime leaves as UTC with milliseconds; emails
// show only to their owner and admins; a missing record is null.
func TestOutputFormats(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.newClass(classSpec{startIn: time.Hour})
	var got struct {
		GetLiveClass struct {
			StartTime  string
			Instructor struct{ Email *string }
		}
		Missing *struct{ ID string }
	}
	e.mustOK(e.do(student, `query($id: ID!) { getLiveClass(id: $id) { startTime instructor { email } } missing: getLiveClass(id: "nope") { id } }`,
		map[string]any{"id": c.ID}), &got)
	if want := c.StartTime.UTC().Format("2006-01-02T15:04:05.000Z"); got.GetLiveClass.StartTime != want {
		t.Errorf("startTime %q, want %q", got.GetLiveClass.StartTime, want)
	}
	if got.GetLiveClass.Instructor.Email != nil {
		t.Errorf("a student sees the instructor's email")
	}
	if got.Missing != nil {
		t.Errorf("missing class is not null")
	}
	var me struct{ Me struct{ Email *string } }
	e.mustOK(e.do(mentorOwn, `{ me { email } }`, nil), &me)
	if me.Me.Email == nil || *me.Me.Email != "mentor-own@example.com" {
		t.Errorf("own email %v", me.Me.Email)
	}
}

// TestHardening: depth, complexity, introspection, body size, GET.
func TestHardening(t *testing.T) {
	e := newEnv(t, envOptions{maxDepth: 5, maxComplexity: 300})
	deep := `{ listLiveClassEnrollments { items { liveClass { enrollments { items { liveClass { id } } } } } } }`
	if r := e.do(admin, deep, nil); r.code() != "DEPTH_LIMIT_EXCEEDED" {
		t.Errorf("deep query: %s", r.code())
	}
	if r := e.do(admin, `{ listLiveClasses { items { id title } } }`, nil); r.code() != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Errorf("complex query (100 × fields): %s", r.code())
	}
	if r := e.do(admin, `{ listLiveClasses(limit: 10) { items { id title } } }`, nil); r.code() != ok {
		t.Errorf("small query: %s %+v", r.code(), r.Errors)
	}
	if r := e.do(admin, `{ __schema { queryType { name } } }`, nil); r.code() != "GRAPHQL_VALIDATION_FAILED" {
		t.Errorf("introspection while off: %s", r.code())
	}
	if r := e.do(admin, `{ listLiveClasses( }`, nil); r.code() != "GRAPHQL_PARSE_FAILED" {
		t.Errorf("parse error: %s", r.code())
	}
	on := newEnv(t, envOptions{introspection: true})
	var schema struct {
		Schema struct{ QueryType struct{ Name string } } `json:"__schema"`
	}
	on.mustOK(on.do(anon, `{ __schema { queryType { name } } }`, nil), &schema)
	if schema.Schema.QueryType.Name != "Query" {
		t.Errorf("introspection on: %+v", schema)
	}

	big := bytes.Repeat([]byte(" "), 1<<20+1)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/graphql", bytes.NewReader(big))
	req.Header.Set("Content-Type", "application/json")
	if r := e.send(req); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("1 MiB + 1 body: status %d, want 413", r.status)
	}

	get := func(q string) gqlResponse {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/graphql?query="+url.QueryEscape(q), nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens[admin])
		return e.send(req)
	}
	if r := get(`{ listLiveClasses(limit: 5) { items { id } } }`); r.code() != ok {
		t.Errorf("GET query: %s %+v", r.code(), r.Errors)
	}
	if r := get(`mutation { deleteUser(input: {id: "x"}) { id } }`); r.status != http.StatusNotAcceptable || r.code() == ok {
		t.Errorf("GET mutation: status %d, %s; want 406 and an error", r.status, r.code())
	}
}
