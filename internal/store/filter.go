package store

// Op is a comparison of Amplify's Model…FilterInput types.
type Op string

// Ops. Between takes two values; AttributeExists one bool; the rest one value.
const (
	OpEq              Op = "eq"
	OpNe              Op = "ne"
	OpGt              Op = "gt"
	OpGe              Op = "ge"
	OpLt              Op = "lt"
	OpLe              Op = "le"
	OpBetween         Op = "between"
	OpBeginsWith      Op = "beginsWith"
	OpContains        Op = "contains"
	OpNotContains     Op = "notContains"
	OpAttributeExists Op = "attributeExists"
)

// Cond compares one field, named as in the GraphQL schema ("startTime",
// "tags", "isLive"), with values of the field's Go type: string, int,
// float64, bool or time.Time. An engine rejects an unknown field or an op
// the field cannot take with an apperr.Invalid error naming it.
type Cond struct {
	Field  string
	Op     Op
	Values []any
}

// Filter is Amplify's filter tree: every Cond, every And, none of Or
// failing (at least one holds when Or is non-empty) and not Not.
type Filter struct {
	Conds []Cond
	And   []Filter
	Or    []Filter
	Not   *Filter
}
