// Package model holds the GraphQL API's own types: the ones gqlgen
// generates (connections, inputs) and the AppSync scalars.
package model

import (
	"fmt"
	"io"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/liveclass/liveclass/internal/apperr"
)

// DateTimeLayout is how AWSDateTime values leave the server: RFC 3339 in
// UTC with milliseconds, as AppSync writes them, so that clients comparing
// strings compare instants.
const DateTimeLayout = "2006-01-02T15:04:05.000Z"

// MarshalAWSDateTime writes t in DateTimeLayout.
func MarshalAWSDateTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(t.UTC().Format(DateTimeLayout)))
	})
}

// UnmarshalAWSDateTime reads any RFC 3339 time.
func UnmarshalAWSDateTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, apperr.New(apperr.Invalid, "AWSDateTime must be an RFC 3339 string, got %T", v)
	}
	return ParseDateTime(s)
}

// ParseDateTime parses an RFC 3339 time (fractional seconds optional).
func ParseDateTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, apperr.New(apperr.Invalid, "%q is not an RFC 3339 date-time", s)
	}
	return t.UTC(), nil
}

// MarshalAWSEmail writes an e-mail address.
func MarshalAWSEmail(s string) graphql.Marshaler { return graphql.MarshalString(s) }

// UnmarshalAWSEmail reads and checks an e-mail address: a bare
// addr-spec, without a display name.
func UnmarshalAWSEmail(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", apperr.New(apperr.Invalid, "AWSEmail must be a string, got %T", v)
	}
	if err := CheckEmail(s); err != nil {
		return "", err
	}
	return s, nil
}

// CheckEmail reports whether s is a plain e-mail address.
func CheckEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s, "@") {
		return apperr.Field("email", "%s", fmt.Sprintf("%q is not an e-mail address", s))
	}
	return nil
}
