package sqldb

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// DefaultLimit is the page size when a Page asks for 0.
const DefaultLimit = 100

// Every list is ordered by (a time column, id), so a cursor is that pair
// of the last row returned. It is opaque to clients (base64 of
// "v1:<unix ms>:<id>"); the version prefix lets the format change later
// without misreading old cursors.
const cursorPrefix = "v1:"

func encodeCursor(t time.Time, id string) string {
	raw := cursorPrefix + strconv.FormatInt(t.UnixMilli(), 10) + ":" + id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(s string) (time.Time, string, error) {
	bad := func() (time.Time, string, error) {
		return time.Time{}, "", apperr.Field("nextToken", "malformed pagination token")
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return bad()
	}
	rest, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok {
		return bad()
	}
	msText, id, ok := strings.Cut(rest, ":")
	if !ok || id == "" {
		return bad()
	}
	ms, err := strconv.ParseInt(msText, 10, 64)
	if err != nil {
		return bad()
	}
	return time.UnixMilli(ms).UTC(), id, nil
}

// listSpec describes one keyset-paginated query.
type listSpec[T any] struct {
	table   string   // table name, also the alias columns are qualified with
	cols    string   // select list
	sortCol string   // the time column of the (sortCol, id) order
	where   []string // conditions besides the filter, with args
	args    []any
	filter  *store.Filter    // the caller's filter, compiled against fields
	fields  map[string]field // the filterable fields of the table
	now     time.Time        // the clock of isUpcoming filters
	page    store.Page
	scan    func(*sql.Rows) (T, error)
	key     func(*T) (time.Time, string)
}

// list runs a keyset-paginated select: it fetches one row more than asked
// to learn whether another page follows, so Next is empty exactly on the
// last page.
func list[T any](ctx context.Context, db *DB, s listSpec[T]) (store.List[T], error) {
	limit := s.page.Limit
	if limit < 0 {
		return store.List[T]{}, apperr.Field("limit", "must not be negative")
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	c := compiler{db: db, table: s.table, fields: s.fields, now: s.now, args: s.args}
	cond, err := c.compile(s.filter, 0)
	if err != nil {
		return store.List[T]{}, err
	}
	where, args := s.where, c.args
	if cond != "" {
		where = append(where[:len(where):len(where)], cond)
	}
	cmp, dir := ">", "ASC"
	if s.page.Desc {
		cmp, dir = "<", "DESC"
	}
	if s.page.After != "" {
		t, id, err := decodeCursor(s.page.After)
		if err != nil {
			return store.List[T]{}, err
		}
		where = append(where[:len(where):len(where)],
			fmt.Sprintf("(%s.%s, %s.id) %s (?, ?)", s.table, s.sortCol, s.table, cmp))
		args = append(args[:len(args):len(args)], db.d.Time(t), id)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s FROM %s", s.cols, s.table)
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	fmt.Fprintf(&b, " ORDER BY %s.%s %s, %s.id %s LIMIT %d", s.table, s.sortCol, dir, s.table, dir, limit+1)
	rows, err := db.r.QueryContext(ctx, db.q(b.String()), args...)
	if err != nil {
		return store.List[T]{}, db.wrap(err, "list "+s.table)
	}
	defer rows.Close()
	items := make([]T, 0, min(limit, 64))
	for rows.Next() {
		it, err := s.scan(rows)
		if err != nil {
			return store.List[T]{}, db.wrap(err, "scan "+s.table)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return store.List[T]{}, db.wrap(err, "list "+s.table)
	}
	var out store.List[T]
	if len(items) > limit {
		items = items[:limit]
		t, id := s.key(&items[limit-1])
		out.Next = encodeCursor(t, id)
	}
	out.Items = items
	return out, nil
}

// queryAll runs a select and scans every row.
func queryAll[T any](ctx context.Context, db *DB, query string, args []any, scan func(*sql.Rows) (T, error)) ([]T, error) {
	rows, err := db.r.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		it, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// JSONTags encodes tags as a JSON array, the text both engines store.
func JSONTags(tags []string) (any, error) {
	if tags == nil {
		tags = []string{}
	}
	b, err := json.Marshal(tags)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// tagsScan decodes the JSON array text of a tags column.
type tagsScan struct{ t *[]string }

func (s tagsScan) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	case nil:
		*s.t = nil
		return nil
	default:
		return fmt.Errorf("cannot scan %T into tags", src)
	}
	var tags []string
	if err := json.Unmarshal(b, &tags); err != nil {
		return fmt.Errorf("tags: %w", err)
	}
	if len(tags) == 0 {
		tags = nil // no tags read back as nil, whatever was written
	}
	*s.t = tags
	return nil
}
