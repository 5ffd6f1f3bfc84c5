package sqldb

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// kind is how a filterable field is stored and which ops it takes.
type kind int

const (
	kString     kind = iota // text; every op
	kEnum                   // text from a fixed set; eq, ne
	kInt                    // integer; comparisons, between
	kFloat                  // floating point; comparisons, between
	kBool                   // boolean; eq, ne
	kTime                   // time; comparisons, between
	kTags                   // tag list; eq/contains = is one of the tags
	kIsLive                 // computed: status = 'LIVE'
	kIsUpcoming             // computed: status = 'SCHEDULED' AND start_time > now
)

// field maps a GraphQL field name to its column.
type field struct {
	col      string
	kind     kind
	nullable bool
}

// The filterable fields of each record, by their GraphQL names.
var (
	classFields = map[string]field{
		"id":                  {col: "id", kind: kString},
		"title":               {col: "title", kind: kString},
		"description":         {col: "description", kind: kString, nullable: true},
		"instructorId":        {col: "instructor_id", kind: kString},
		"startTime":           {col: "start_time", kind: kTime},
		"endTime":             {col: "end_time", kind: kTime},
		"duration":            {col: "duration", kind: kInt},
		"awsService":          {col: "aws_service", kind: kEnum},
		"chimeRoomId":         {col: "chime_room_id", kind: kString, nullable: true},
		"ivsChannelArn":       {col: "ivs_channel_arn", kind: kString, nullable: true},
		"recordingS3Key":      {col: "recording_s3_key", kind: kString, nullable: true},
		"requiresEnrollment":  {col: "requires_enrollment", kind: kBool},
		"accessLevel":         {col: "access_level", kind: kEnum},
		"maxParticipants":     {col: "max_participants", kind: kInt},
		"currentParticipants": {col: "current_participants", kind: kInt},
		"category":            {col: "category", kind: kString},
		"level":               {col: "level", kind: kEnum},
		"price":               {col: "price", kind: kFloat},
		"isFree":              {col: "is_free", kind: kBool},
		"tags":                {col: "tags", kind: kTags},
		"status":              {col: "status", kind: kEnum},
		"isLive":              {kind: kIsLive},
		"isUpcoming":          {kind: kIsUpcoming},
		"reminderSent":        {col: "reminder_sent", kind: kBool},
		"nextReminder":        {col: "next_reminder", kind: kTime, nullable: true},
		"createdAt":           {col: "created_at", kind: kTime},
		"updatedAt":           {col: "updated_at", kind: kTime},
	}
	enrollmentFields = map[string]field{
		"id":                 {col: "id", kind: kString},
		"userId":             {col: "user_id", kind: kString},
		"owner":              {col: "user_id", kind: kString},
		"liveClassId":        {col: "live_class_id", kind: kString},
		"enrolledAt":         {col: "enrolled_at", kind: kTime},
		"attended":           {col: "attended", kind: kBool, nullable: true},
		"attendanceDuration": {col: "attendance_duration", kind: kInt, nullable: true},
		"feedback":           {col: "feedback", kind: kString, nullable: true},
		"rating":             {col: "rating", kind: kInt, nullable: true},
		"createdAt":          {col: "created_at", kind: kTime},
		"updatedAt":          {col: "updated_at", kind: kTime},
	}
	recordingFields = map[string]field{
		"id":            {col: "id", kind: kString},
		"liveClassId":   {col: "live_class_id", kind: kString},
		"s3Key":         {col: "s3_key", kind: kString},
		"s3Bucket":      {col: "s3_bucket", kind: kString},
		"duration":      {col: "duration", kind: kInt},
		"thumbnailUrl":  {col: "thumbnail_url", kind: kString, nullable: true},
		"transcriptUrl": {col: "transcript_url", kind: kString, nullable: true},
		"createdAt":     {col: "created_at", kind: kTime},
		"updatedAt":     {col: "updated_at", kind: kTime},
	}
	userFields = map[string]field{
		"id":        {col: "id", kind: kString},
		"name":      {col: "name", kind: kString},
		"email":     {col: "email", kind: kString},
		"role":      {col: "role", kind: kEnum},
		"createdAt": {col: "created_at", kind: kTime},
		"updatedAt": {col: "updated_at", kind: kTime},
	}
)

// maxFilterDepth bounds and/or/not nesting so that a hostile filter cannot
// build an enormous query; the GraphQL layer has its own, lower, limits.
const maxFilterDepth = 16

// compiler turns a store.Filter into a SQL condition with bound
// parameters. Values never enter the SQL text.
type compiler struct {
	db     *DB
	table  string
	fields map[string]field
	now    time.Time // clock of isUpcoming
	args   []any
}

// compile returns the condition for f ("" when f selects everything) and
// appends its parameters to c.args.
func (c *compiler) compile(f *store.Filter, depth int) (string, error) {
	if f == nil {
		return "", nil
	}
	if depth > maxFilterDepth {
		return "", apperr.Field("filter", "nested more than %d levels deep", maxFilterDepth)
	}
	var parts []string
	for _, cond := range f.Conds {
		s, err := c.cond(cond)
		if err != nil {
			return "", err
		}
		parts = append(parts, s)
	}
	for i := range f.And {
		s, err := c.compile(&f.And[i], depth+1)
		if err != nil {
			return "", err
		}
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(f.Or) > 0 {
		var alts []string
		everything := false
		mark := len(c.args)
		for i := range f.Or {
			s, err := c.compile(&f.Or[i], depth+1)
			if err != nil {
				return "", err
			}
			if s == "" {
				everything = true // an empty alternative holds for every row
			}
			alts = append(alts, s)
		}
		if everything {
			c.args = c.args[:mark] // the alternatives' parameters go with their SQL
		} else {
			parts = append(parts, "("+strings.Join(alts, " OR ")+")")
		}
	}
	if f.Not != nil {
		s, err := c.compile(f.Not, depth+1)
		if err != nil {
			return "", err
		}
		if s == "" {
			s = "1 = 1"
		}
		// Every condition is built to be TRUE or FALSE, never NULL, so NOT
		// is the plain complement (a missing attribute fails eq and passes
		// ne, as in DynamoDB).
		parts = append(parts, "NOT ("+s+")")
	}
	switch len(parts) {
	case 0:
		return "", nil
	case 1:
		return parts[0], nil
	}
	return "(" + strings.Join(parts, " AND ") + ")", nil
}

func (c *compiler) bind(v any) string {
	c.args = append(c.args, v)
	return "?"
}

func (c *compiler) cond(cond store.Cond) (string, error) {
	name := "filter." + cond.Field
	fd, ok := c.fields[cond.Field]
	if !ok {
		return "", apperr.Field(name, "unknown field")
	}
	col := c.table + "." + fd.col
	want := 1
	switch cond.Op {
	case store.OpBetween:
		want = 2
	case store.OpEq, store.OpNe, store.OpGt, store.OpGe, store.OpLt, store.OpLe,
		store.OpBeginsWith, store.OpContains, store.OpNotContains, store.OpAttributeExists:
	default:
		return "", apperr.Field(name, "unknown operator %q", cond.Op)
	}
	if len(cond.Values) != want {
		return "", apperr.Field(name, "%s takes %d value(s), got %d", cond.Op, want, len(cond.Values))
	}

	if cond.Op == store.OpAttributeExists {
		exists, ok := cond.Values[0].(bool)
		if !ok {
			return "", apperr.Field(name, "attributeExists takes a boolean")
		}
		// Columns that are NOT NULL always exist; computed fields and tags
		// (an empty list is still a list) too.
		if !fd.nullable {
			if exists {
				return "1 = 1", nil
			}
			return "1 = 0", nil
		}
		if exists {
			return col + " IS NOT NULL", nil
		}
		return col + " IS NULL", nil
	}

	switch fd.kind {
	case kIsLive, kIsUpcoming:
		if cond.Op != store.OpEq && cond.Op != store.OpNe {
			return "", apperr.Field(name, "takes only eq and ne")
		}
		b, ok := cond.Values[0].(bool)
		if !ok {
			return "", apperr.Field(name, "takes a boolean")
		}
		var expr string
		if fd.kind == kIsLive {
			expr = fmt.Sprintf("(%s.status = %s)", c.table, c.bind(string(store.StatusLive)))
		} else {
			expr = fmt.Sprintf("(%s.status = %s AND %s.start_time > %s)",
				c.table, c.bind(string(store.StatusScheduled)), c.table, c.bind(c.db.tm(c.now)))
		}
		if b == (cond.Op == store.OpEq) {
			return expr, nil
		}
		return "NOT " + expr, nil

	case kTags:
		v, ok := asString(cond.Values[0])
		if !ok {
			return "", apperr.Field(name, "takes a string")
		}
		// tags eq X and tags contains X both mean "X is one of the tags"
		// (exact match): a list field compared with one string can mean
		// nothing else useful, and it is what the catalogue filters by.
		has := "(" + c.db.d.TagsHas(col) + ")"
		c.bind(v)
		switch cond.Op {
		case store.OpEq, store.OpContains:
			return has, nil
		case store.OpNe, store.OpNotContains:
			return "NOT " + has, nil
		}
		return "", apperr.Field(name, "tags take only eq, ne, contains and notContains")
	}

	// Scalar columns.
	vals := make([]any, len(cond.Values))
	for i, v := range cond.Values {
		pv, err := c.value(fd, name, v)
		if err != nil {
			return "", err
		}
		vals[i] = pv
	}
	var expr string
	negative := false
	switch cond.Op {
	case store.OpEq, store.OpNe, store.OpGt, store.OpGe, store.OpLt, store.OpLe:
		if (fd.kind == kEnum || fd.kind == kBool) && cond.Op != store.OpEq && cond.Op != store.OpNe {
			return "", apperr.Field(name, "takes only eq and ne")
		}
		op := map[store.Op]string{store.OpEq: "=", store.OpNe: "=", store.OpGt: ">",
			store.OpGe: ">=", store.OpLt: "<", store.OpLe: "<="}[cond.Op]
		expr = fmt.Sprintf("%s %s %s", col, op, c.bind(vals[0]))
		negative = cond.Op == store.OpNe
	case store.OpBetween:
		if fd.kind == kEnum || fd.kind == kBool {
			return "", apperr.Field(name, "takes only eq and ne")
		}
		expr = fmt.Sprintf("%s BETWEEN %s AND %s", col, c.bind(vals[0]), c.bind(vals[1]))
	case store.OpBeginsWith, store.OpContains, store.OpNotContains:
		if fd.kind != kString {
			return "", apperr.Field(name, "%s applies to text fields only", cond.Op)
		}
		if cond.Op == store.OpBeginsWith {
			expr = fmt.Sprintf("%s(%s, %s) = 1", c.db.d.Instr, col, c.bind(vals[0]))
		} else {
			expr = fmt.Sprintf("%s(%s, %s) > 0", c.db.d.Instr, col, c.bind(vals[0]))
		}
		negative = cond.Op == store.OpNotContains
	}
	// Make the result two-valued: a NULL column fails every positive test
	// and passes every negative one.
	switch {
	case negative && fd.nullable:
		return fmt.Sprintf("(%s IS NULL OR NOT %s)", col, expr), nil
	case negative:
		return "NOT (" + expr + ")", nil
	case fd.nullable:
		return fmt.Sprintf("(%s IS NOT NULL AND %s)", col, expr), nil
	}
	return "(" + expr + ")", nil
}

// value converts a filter value to a parameter for the field's column.
func (c *compiler) value(fd field, name string, v any) (any, error) {
	switch fd.kind {
	case kString, kEnum:
		if s, ok := asString(v); ok {
			return s, nil
		}
		return nil, apperr.Field(name, "takes a string, got %T", v)
	case kInt:
		switch n := v.(type) {
		case int:
			return int64(n), nil
		case int32:
			return int64(n), nil
		case int64:
			return n, nil
		case float64:
			if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
				return int64(n), nil
			}
		}
		return nil, apperr.Field(name, "takes an integer, got %v", v)
	case kFloat:
		switch n := v.(type) {
		case float64:
			return n, nil
		case float32:
			return float64(n), nil
		case int:
			return float64(n), nil
		case int64:
			return float64(n), nil
		}
		return nil, apperr.Field(name, "takes a number, got %T", v)
	case kBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, apperr.Field(name, "takes a boolean, got %T", v)
	case kTime:
		switch t := v.(type) {
		case time.Time:
			return c.db.tm(t), nil
		case string:
			// AWSDateTime strings are accepted too, for callers that pass
			// the GraphQL value through.
			p, err := time.Parse(time.RFC3339Nano, t)
			if err != nil {
				return nil, apperr.Field(name, "takes an ISO-8601 date-time, got %q", t)
			}
			return c.db.tm(p), nil
		}
		return nil, apperr.Field(name, "takes a time, got %T", v)
	}
	return nil, apperr.Field(name, "cannot be compared")
}

// asString accepts strings and the string-based ID and enum types.
func asString(v any) (string, bool) {
	if s, ok := v.(string); ok {
		return s, true
	}
	rv := reflect.ValueOf(v)
	if rv.IsValid() && rv.Kind() == reflect.String {
		return rv.String(), true
	}
	return "", false
}
