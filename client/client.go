// Package client is a small Go client of liveclass's public API: sign-up
// and sign-in over /auth, and GraphQL over /graphql with typed helpers for
// the join path. The integration tests and the load generator go through
// it, so it is exactly what a third-party Go program would use.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Client talks to one liveclass server as one user (or anonymously).
// It is safe for concurrent use.
type Client struct {
	base string
	hc   *http.Client

	mu    sync.RWMutex
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through hc, e.g. one whose Transport keeps
// enough idle connections for a load test.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithToken starts the client signed in with a bearer token.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// New returns a client of the server at baseURL (e.g. http://localhost:8080).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Token is the bearer token of the current sign-in, "" when anonymous.
func (c *Client) Token() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.token
}

// Error is an error the server reported: an HTTP error of /auth or a
// GraphQL error with extensions.code.
type Error struct {
	// Code is the machine-readable kind: UNAUTHENTICATED, FORBIDDEN,
	// BAD_USER_INPUT, NOT_FOUND, CONFLICT, TOO_MANY_REQUESTS,
	// INTERNAL_SERVER_ERROR, or a GraphQL validation code.
	Code    string
	Message string
	// Field names the input field at fault for BAD_USER_INPUT, if any.
	Field string
	// Status is the HTTP status of the response.
	Status int
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("liveclass: HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("liveclass: %s: %s", e.Code, e.Message)
}

// CodeOf returns the server's error code of err, "" when err is not an *Error.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// User is an account as the API shows it; Email is empty when hidden.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Session is a sign-in.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	CSRFToken string    `json:"csrfToken"`
	User      User      `json:"user"`
}

// Signup creates a STUDENT account and signs the client in as it.
func (c *Client) Signup(ctx context.Context, email, password, name string) (Session, error) {
	return c.signIn(ctx, "/auth/signup", map[string]string{"email": email, "password": password, "name": name})
}

// Login signs in and keeps the bearer token for later calls.
func (c *Client) Login(ctx context.Context, email, password string) (Session, error) {
	return c.signIn(ctx, "/auth/login", map[string]string{"email": email, "password": password})
}

func (c *Client) signIn(ctx context.Context, path string, body map[string]string) (Session, error) {
	var s Session
	if err := c.postJSON(ctx, path, body, &s); err != nil {
		return Session{}, err
	}
	c.mu.Lock()
	c.token = s.Token
	c.mu.Unlock()
	return s, nil
}

// Logout ends the sign-in on the server and forgets the token.
func (c *Client) Logout(ctx context.Context) error {
	err := c.postJSON(ctx, "/auth/logout", map[string]string{}, nil)
	c.mu.Lock()
	c.token = ""
	c.mu.Unlock()
	return err
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, path, b)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("liveclass: read %s: %w", path, err)
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error struct{ Code, Message, Field string }
		}
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(data))}
		}
		return &Error{Code: eb.Error.Code, Message: eb.Error.Message, Field: eb.Error.Field, Status: resp.StatusCode}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("liveclass: decode %s: %w", path, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if tok := c.Token(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("liveclass: %s: %w", path, err)
	}
	return resp, nil
}

type gqlRequest struct {
	Query     string         `json:"query"`
	Variables map[string]any `json:"variables,omitempty"`
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code  string `json:"code"`
			Field string `json:"field"`
		} `json:"extensions"`
	} `json:"errors"`
	// Error is the shape of errors of the HTTP layer in front of GraphQL.
	Error *struct{ Code, Message, Field string } `json:"error"`
}

// GraphQL runs a query or mutation and decodes its data into out (a
// pointer to a struct whose fields match the selection; nil to discard).
// The first GraphQL error is returned as an *Error with its
// extensions.code.
func (c *Client) GraphQL(ctx context.Context, query string, vars map[string]any, out any) error {
	b, err := json.Marshal(gqlRequest{Query: query, Variables: vars})
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, "/graphql", b)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("liveclass: read /graphql: %w", err)
	}
	var gr gqlResponse
	if err := json.Unmarshal(data, &gr); err != nil {
		return &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(data))}
	}
	if len(gr.Errors) > 0 {
		e := gr.Errors[0]
		return &Error{Code: e.Extensions.Code, Message: e.Message, Field: e.Extensions.Field, Status: resp.StatusCode}
	}
	if gr.Error != nil && gr.Error.Code != "" {
		// An error of the HTTP layer (sign-in middleware, body limit).
		return &Error{Code: gr.Error.Code, Message: gr.Error.Message, Field: gr.Error.Field, Status: resp.StatusCode}
	}
	if resp.StatusCode >= 300 {
		return &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(data))}
	}
	if out == nil || len(gr.Data) == 0 {
		return nil
	}
	if err := json.Unmarshal(gr.Data, out); err != nil {
		return fmt.Errorf("liveclass: decode data: %w", err)
	}
	return nil
}
