// Package apperr gives errors a kind (not found, forbidden, invalid input,
// conflict, unauthenticated) so that the HTTP and GraphQL layers can map them
// to status codes and extensions.code in one place, whatever package made them.
package apperr

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the API layers.
type Kind int

// The kinds, with the GraphQL extensions.code each maps to.
const (
	Internal        Kind = iota // INTERNAL_SERVER_ERROR
	Invalid                     // BAD_USER_INPUT
	NotFound                    // NOT_FOUND
	Forbidden                   // FORBIDDEN
	Unauthenticated             // UNAUTHENTICATED
	Conflict                    // CONFLICT
	TooMany                     // TOO_MANY_REQUESTS
)

// Code is the GraphQL extensions.code of the kind.
func (k Kind) Code() string {
	switch k {
	case Invalid:
		return "BAD_USER_INPUT"
	case NotFound:
		return "NOT_FOUND"
	case Forbidden:
		return "FORBIDDEN"
	case Unauthenticated:
		return "UNAUTHENTICATED"
	case Conflict:
		return "CONFLICT"
	case TooMany:
		return "TOO_MANY_REQUESTS"
	}
	return "INTERNAL_SERVER_ERROR"
}

// HTTPStatus is the HTTP status of the kind.
func (k Kind) HTTPStatus() int {
	switch k {
	case Invalid:
		return 400
	case NotFound:
		return 404
	case Forbidden:
		return 403
	case Unauthenticated:
		return 401
	case Conflict:
		return 409
	case TooMany:
		return 429
	}
	return 500
}

// Error is an error with a kind and, for invalid input, the offending field.
type Error struct {
	Kind    Kind
	Field   string // input field at fault, e.g. "title"; empty when none
	Message string
	Err     error // wrapped cause, may be nil
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with a formatted message.
func New(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Field returns an invalid-input error naming the field at fault.
func Field(field, format string, args ...any) error {
	return &Error{Kind: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind k that wraps err.
func Wrap(k Kind, err error, format string, args ...any) error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...), Err: err}
}

// KindOf reports the kind of err, Internal when it carries none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// FieldOf reports the field an invalid-input error names, if any.
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// Is reports whether err has kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }
