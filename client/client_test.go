package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestErrorDecoding feeds the client each shape of failure the server
// produces and checks the typed error it returns.
func TestErrorDecoding(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   Error
	}{
		{"graphql error with field", 200,
			`{"errors":[{"message":"title: must be 1 to 200 characters","extensions":{"code":"BAD_USER_INPUT","field":"title"}}],"data":null}`,
			Error{Code: "BAD_USER_INPUT", Field: "title", Message: "title: must be 1 to 200 characters", Status: 200}},
		{"graphql error without data", 422,
			`{"errors":[{"message":"depth","extensions":{"code":"DEPTH_LIMIT_EXCEEDED"}}]}`,
			Error{Code: "DEPTH_LIMIT_EXCEEDED", Message: "depth", Status: 422}},
		{"http layer error", 401,
			`{"error":{"code":"UNAUTHENTICATED","message":"invalid token"}}`,
			Error{Code: "UNAUTHENTICATED", Message: "invalid token", Status: 401}},
		{"not json", 502, "Bad Gateway\n", Error{Message: "Bad Gateway", Status: 502}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer ts.Close()
			err := New(ts.URL).GraphQL(context.Background(), "{ me { id } }", nil, nil)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if *e != tt.want {
				t.Fatalf("got %+v, want %+v", *e, tt.want)
			}
			if CodeOf(err) != tt.want.Code {
				t.Fatalf("CodeOf = %q", CodeOf(err))
			}
		})
	}
}

// TestSignInKeepsToken checks that the token from sign-in is sent as a
// bearer token on later calls and dropped by Logout.
func TestSignInKeepsToken(t *testing.T) {
	var lastAuth string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lastAuth = r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/auth/login":
			var in map[string]string
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in["email"] != "a@b.c" || in["password"] != "pw" {
				w.WriteHeader(400)
				_, _ = io.WriteString(w, `{"error":{"code":"BAD_USER_INPUT","message":"bad body","field":"email"}}`)
				return
			}
			_, _ = io.WriteString(w, `{"token":"tok123","expiresAt":"2030-01-01T00:00:00Z","user":{"id":"u1","role":"STUDENT"}}`)
		case "/auth/logout":
			w.WriteHeader(204)
		case "/graphql":
			_, _ = io.WriteString(w, `{"data":{"generateLiveClassToken":{"token":"join","role":"ATTENDEE","awsService":"CHIME","liveClassId":"c1"}}}`)
		}
	}))
	defer ts.Close()
	ctx := context.Background()
	c := New(ts.URL + "/")
	if _, err := c.Login(ctx, "a@b.c", "wrong"); CodeOf(err) != "BAD_USER_INPUT" {
		t.Fatalf("bad login: %v", err)
	}
	s, err := c.Login(ctx, "a@b.c", "pw")
	if err != nil || s.Token != "tok123" || s.User.Role != "STUDENT" || c.Token() != "tok123" {
		t.Fatalf("login: %+v %v", s, err)
	}
	g, err := c.GenerateLiveClassToken(ctx, "c1")
	if err != nil || g.Token != "join" || g.Role != "ATTENDEE" {
		t.Fatalf("token: %+v %v", g, err)
	}
	if lastAuth != "Bearer tok123" {
		t.Fatalf("Authorization %q", lastAuth)
	}
	if err := c.Logout(ctx); err != nil || c.Token() != "" {
		t.Fatalf("logout: %v, token %q", err, c.Token())
	}
	_ = c.GraphQL(ctx, "{ me { id } }", nil, nil)
	if strings.Contains(lastAuth, "tok123") {
		t.Fatal("token sent after logout")
	}
}
