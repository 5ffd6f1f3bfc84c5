package graph

import (
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/graph/model"
	"github.com/liveclass/liveclass/internal/store"
)

// Local ops that only the in-process evaluator knows: the subscription
// filter types have in / notIn, the store's filters do not.
const (
	opIn    store.Op = "in"
	opNotIn store.Op = "notIn"
)

// timeFields are the fields whose filters compare instants. The filter
// types declare them as strings (Amplify's ModelStringInput); comparing
// instants instead of strings makes "2026-01-01T10:00:00+01:00" and
// "2026-01-01T09:00:00.000Z" equal, as they are.
func isTimeField(name string) bool {
	switch name {
	case "startTime", "endTime", "nextReminder", "createdAt", "updatedAt", "enrolledAt":
		return true
	}
	return false
}

// filterOptions says which filter dialect a conversion is for.
type filterOptions struct {
	// inMemory allows ops only the in-process evaluator supports (in,
	// notIn); a store query rejects them.
	inMemory bool
}

// toFilter turns any generated Model…FilterInput / ConditionInput /
// ModelSubscription…FilterInput (a pointer to a struct, possibly nil) into
// a store.Filter. arg names the argument ("filter", "condition") for
// error messages; every unsupported op is a BAD_USER_INPUT naming the
// field's path, e.g. "filter.title.size".
func toFilter(in any, arg string, opt filterOptions) (*store.Filter, error) {
	v := reflect.ValueOf(in)
	if !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
		return nil, nil
	}
	f, err := walkFilter(v, arg, opt)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

func jsonName(sf reflect.StructField) string {
	name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
	return name
}

func walkFilter(v reflect.Value, path string, opt filterOptions) (store.Filter, error) {
	var f store.Filter
	v = reflect.Indirect(v)
	t := v.Type()
	for i := range t.NumField() {
		fv := v.Field(i)
		if fv.IsNil() {
			continue
		}
		name := jsonName(t.Field(i))
		p := path + "." + name
		switch name {
		case "and", "or":
			for j := range fv.Len() {
				el := fv.Index(j)
				if el.IsNil() {
					continue
				}
				sub, err := walkFilter(el, p, opt)
				if err != nil {
					return f, err
				}
				if name == "and" {
					f.And = append(f.And, sub)
				} else {
					f.Or = append(f.Or, sub)
				}
			}
		case "not":
			sub, err := walkFilter(fv, p, opt)
			if err != nil {
				return f, err
			}
			f.Not = &sub
		default:
			conds, err := walkOps(fv.Elem(), name, p, opt)
			if err != nil {
				return f, err
			}
			f.Conds = append(f.Conds, conds...)
		}
	}
	return f, nil
}

// walkOps reads one field's comparison struct (ModelStringInput, …).
func walkOps(v reflect.Value, field, path string, opt filterOptions) ([]store.Cond, error) {
	var out []store.Cond
	t := v.Type()
	for i := range t.NumField() {
		fv := v.Field(i)
		if fv.IsNil() {
			continue
		}
		op := jsonName(t.Field(i))
		p := path + "." + op
		switch op {
		case "size":
			return nil, apperr.Field(p, "size conditions are not supported")
		case "attributeType":
			return nil, apperr.Field(p, "attributeType conditions are not supported")
		case "attributeExists":
			out = append(out, store.Cond{Field: field, Op: store.OpAttributeExists, Values: []any{fv.Elem().Bool()}})
		case "between", "in", "notIn":
			if op != "between" && !opt.inMemory {
				return nil, apperr.Field(p, "%s is not supported here", op)
			}
			var vals []any
			for j := range fv.Len() {
				el := fv.Index(j)
				if el.IsNil() {
					return nil, apperr.Field(p, "null in a list of values")
				}
				x, err := scalar(el.Elem(), field, p)
				if err != nil {
					return nil, err
				}
				vals = append(vals, x)
			}
			if op == "between" && len(vals) != 2 {
				return nil, apperr.Field(p, "between takes exactly two values")
			}
			out = append(out, store.Cond{Field: field, Op: store.Op(op), Values: vals})
		default:
			x, err := scalar(fv.Elem(), field, p)
			if err != nil {
				return nil, err
			}
			out = append(out, store.Cond{Field: field, Op: store.Op(op), Values: []any{x}})
		}
	}
	return out, nil
}

// scalar turns one filter value into the field's Go type.
func scalar(v reflect.Value, field, path string) (any, error) {
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		if isTimeField(field) {
			t, err := model.ParseDateTime(s)
			if err != nil {
				return nil, apperr.Field(path, "%q is not an RFC 3339 date-time", s)
			}
			return t, nil
		}
		return s, nil
	case reflect.Int, reflect.Int64, reflect.Int32:
		return int(v.Int()), nil
	case reflect.Float64, reflect.Float32:
		return v.Float(), nil
	case reflect.Bool:
		return v.Bool(), nil
	}
	return nil, apperr.Field(path, "unsupported value")
}

// storeFilter is toFilter for a store query. The enrollment filter's
// owner is the enrolled user (Amplify's owner field), so it is asked of
// the store as userId.
func storeFilter(in any) (*store.Filter, error) {
	f, err := toFilter(in, "filter", filterOptions{})
	if f != nil {
		renameField(f, "owner", "userId")
	}
	return f, err
}

func renameField(f *store.Filter, from, to string) {
	for i := range f.Conds {
		if f.Conds[i].Field == from {
			f.Conds[i].Field = to
		}
	}
	for i := range f.And {
		renameField(&f.And[i], from, to)
	}
	for i := range f.Or {
		renameField(&f.Or[i], from, to)
	}
	if f.Not != nil {
		renameField(f.Not, from, to)
	}
}

// record is one stored record as the filter evaluator sees it: field name
// to value (string, int, float64, bool, time.Time, []string), with absent
// optional fields missing.
type record map[string]any

// matches evaluates f on r with Amplify's semantics. A nil filter holds.
func matches(f *store.Filter, r record) bool {
	if f == nil {
		return true
	}
	for _, c := range f.Conds {
		if !condHolds(c, r) {
			return false
		}
	}
	for i := range f.And {
		if !matches(&f.And[i], r) {
			return false
		}
	}
	if len(f.Or) > 0 {
		any := false
		for i := range f.Or {
			if matches(&f.Or[i], r) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	if f.Not != nil && matches(f.Not, r) {
		return false
	}
	return true
}

func condHolds(c store.Cond, r record) bool {
	v, ok := r[c.Field]
	if ok && v == nil {
		ok = false
	}
	if c.Op == store.OpAttributeExists {
		want, _ := c.Values[0].(bool)
		return ok == want
	}
	if !ok {
		// As in DynamoDB, a missing attribute satisfies only ne and notContains.
		return c.Op == store.OpNe || c.Op == store.OpNotContains || c.Op == opNotIn
	}
	switch c.Op {
	case store.OpEq:
		return equal(v, c.Values[0])
	case store.OpNe:
		return !equal(v, c.Values[0])
	case store.OpGt, store.OpGe, store.OpLt, store.OpLe:
		n, ok := compare(v, c.Values[0])
		if !ok {
			return false
		}
		switch c.Op {
		case store.OpGt:
			return n > 0
		case store.OpGe:
			return n >= 0
		case store.OpLt:
			return n < 0
		}
		return n <= 0
	case store.OpBetween:
		lo, ok1 := compare(v, c.Values[0])
		hi, ok2 := compare(v, c.Values[1])
		return ok1 && ok2 && lo >= 0 && hi <= 0
	case store.OpBeginsWith:
		s, ok := v.(string)
		p, ok2 := c.Values[0].(string)
		return ok && ok2 && strings.HasPrefix(s, p)
	case store.OpContains:
		return contains(v, c.Values[0])
	case store.OpNotContains:
		return !contains(v, c.Values[0])
	case opIn, opNotIn:
		in := slices.ContainsFunc(c.Values, func(x any) bool { return equal(v, x) })
		return in == (c.Op == opIn)
	}
	return false
}

func contains(v, x any) bool {
	switch v := v.(type) {
	case string:
		s, ok := x.(string)
		return ok && strings.Contains(v, s)
	case []string:
		s, ok := x.(string)
		return ok && slices.Contains(v, s)
	}
	return false
}

func equal(a, b any) bool {
	n, ok := compare(a, b)
	return ok && n == 0
}

// compare orders a and b when they are of comparable types.
func compare(a, b any) (int, bool) {
	switch a := a.(type) {
	case string:
		b, ok := b.(string)
		return strings.Compare(a, b), ok
	case bool:
		b, ok := b.(bool)
		if !ok {
			return 0, false
		}
		if a == b {
			return 0, true
		}
		if !a {
			return -1, true
		}
		return 1, true
	case time.Time:
		b, ok := b.(time.Time)
		return a.Compare(b), ok
	case int:
		switch b := b.(type) {
		case int:
			return cmpNum(float64(a), float64(b)), true
		case float64:
			return cmpNum(float64(a), b), true
		}
	case float64:
		switch b := b.(type) {
		case int:
			return cmpNum(a, float64(b)), true
		case float64:
			return cmpNum(a, b), true
		}
	}
	return 0, false
}

func cmpNum(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func optional[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func optTime(p *time.Time) any {
	if p == nil {
		return nil
	}
	return *p
}

func classRecord(c *store.LiveClass, now time.Time) record {
	return record{
		"id": string(c.ID), "title": c.Title, "description": optional(c.Description),
		"instructorId": string(c.InstructorID), "startTime": c.StartTime, "endTime": c.EndTime,
		"duration": c.Duration, "awsService": string(c.Service), "chimeRoomId": optional(c.ChimeRoomID),
		"ivsChannelArn": optional(c.IVSChannelARN), "recordingS3Key": optional(c.RecordingS3Key),
		"requiresEnrollment": c.RequiresEnrollment, "accessLevel": string(c.AccessLevel),
		"maxParticipants": c.MaxParticipants, "currentParticipants": c.CurrentParticipants,
		"category": c.Category, "level": string(c.Level), "price": c.Price, "isFree": c.IsFree,
		"tags": c.Tags, "status": string(c.Status), "isLive": c.IsLive(), "isUpcoming": c.IsUpcoming(now),
		"reminderSent": c.ReminderSent, "nextReminder": optTime(c.NextReminder),
		"createdAt": c.CreatedAt, "updatedAt": c.UpdatedAt,
	}
}

func enrollmentRecord(e *store.Enrollment) record {
	return record{
		"id": string(e.ID), "userId": string(e.UserID), "liveClassId": string(e.ClassID),
		"enrolledAt": e.EnrolledAt, "attended": optional(e.Attended),
		"attendanceDuration": optional(e.AttendanceDuration), "feedback": optional(e.Feedback),
		"rating": optional(e.Rating), "createdAt": e.CreatedAt, "updatedAt": e.UpdatedAt,
		"owner": string(e.UserID),
	}
}

func recordingRecord(r *store.Recording) record {
	return record{
		"id": string(r.ID), "liveClassId": string(r.ClassID), "s3Key": r.S3Key, "s3Bucket": r.S3Bucket,
		"duration": r.Duration, "thumbnailUrl": optional(r.ThumbnailURL),
		"transcriptUrl": optional(r.TranscriptURL), "createdAt": r.CreatedAt, "updatedAt": r.UpdatedAt,
	}
}

func userRecord(u *store.User) record {
	return record{
		"id": string(u.ID), "name": u.Name, "email": u.Email, "role": string(u.Role),
		"createdAt": u.CreatedAt, "updatedAt": u.UpdatedAt,
	}
}

// checkCondition evaluates a mutation's condition on the record it is
// about to change; a failing one is DynamoDB's ConditionalCheckFailed.
func checkCondition(cond any, r record) error {
	f, err := toFilter(cond, "condition", filterOptions{inMemory: true})
	if err != nil {
		return err
	}
	if !matches(f, r) {
		return apperr.New(apperr.Conflict, "ConditionalCheckFailed: the condition does not hold")
	}
	return nil
}

// pageOf checks limit (1..100, default 100) and builds a store.Page.
func pageOf(limit *int, nextToken *string, dir *model.ModelSortDirection) (store.Page, error) {
	p := store.Page{Limit: maxLimit}
	if limit != nil {
		if *limit < 1 || *limit > maxLimit {
			return p, apperr.Field("limit", "must be between 1 and %d", maxLimit)
		}
		p.Limit = *limit
	}
	if nextToken != nil {
		p.After = *nextToken
	}
	if dir != nil && *dir == model.ModelSortDirectionDesc {
		p.Desc = true
	}
	return p, nil
}

// maxLimit is the largest page; Amplify's default page is 100 as well.
const maxLimit = 100
