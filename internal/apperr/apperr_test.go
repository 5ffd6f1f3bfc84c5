package apperr_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/liveclass/liveclass/internal/apperr"
)

func TestKindsMapToCodesAndStatuses(t *testing.T) {
	cases := []struct {
		kind   apperr.Kind
		code   string
		status int
	}{
		{apperr.Internal, "INTERNAL_SERVER_ERROR", 500},
		{apperr.Invalid, "BAD_USER_INPUT", 400},
		{apperr.NotFound, "NOT_FOUND", 404},
		{apperr.Forbidden, "FORBIDDEN", 403},
		{apperr.Unauthenticated, "UNAUTHENTICATED", 401},
		{apperr.Conflict, "CONFLICT", 409},
		{apperr.TooMany, "TOO_MANY_REQUESTS", 429},
	}
	for _, tc := range cases {
		if got := tc.kind.Code(); got != tc.code {
			t.Errorf("%d.Code() = %q, want %q", tc.kind, got, tc.code)
		}
		if got := tc.kind.HTTPStatus(); got != tc.status {
			t.Errorf("%s.HTTPStatus() = %d, want %d", tc.code, got, tc.status)
		}
	}
}

func TestKindAndFieldSurviveWrapping(t *testing.T) {
	err := fmt.Errorf("creating a class: %w", apperr.Field("title", "must be 1 to %d characters", 200))
	if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != "title" {
		t.Fatalf("kind %v field %q from %v", apperr.KindOf(err), apperr.FieldOf(err), err)
	}
	if got := err.Error(); got != "creating a class: title: must be 1 to 200 characters" {
		t.Fatalf("message = %q", got)
	}
	wrapped := apperr.Wrap(apperr.NotFound, io.EOF, "no such class")
	if !errors.Is(wrapped, io.EOF) || !apperr.Is(wrapped, apperr.NotFound) || apperr.Is(wrapped, apperr.Conflict) {
		t.Fatalf("Wrap lost its cause or kind: %v", wrapped)
	}
	if apperr.KindOf(io.EOF) != apperr.Internal || apperr.FieldOf(io.EOF) != "" || apperr.Is(nil, apperr.Internal) {
		t.Fatal("a plain error must be Internal with no field, and nil no kind at all")
	}
}
