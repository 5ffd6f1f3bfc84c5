package graph_test

import (
	"strings"
	"testing"
	"time"
)

// TestStreamKeys checks what the stream key operations return: the secret
// and the ingest URL once, by createStreamKey; never again.
func TestStreamKeys(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.broadcastClass()

	type key struct {
		ID          string  `json:"id"`
		LiveClassID string  `json:"liveClassId"`
		Prefix      string  `json:"prefix"`
		CreatedBy   *string `json:"createdBy"`
		CreatedAt   string  `json:"createdAt"`
		RevokedAt   *string `json:"revokedAt"`
		Key         *string `json:"key"`
		IngestURL   *string `json:"ingestUrl"`
	}
	const fields = `id liveClassId prefix createdBy createdAt revokedAt key ingestUrl`
	var created struct{ CreateStreamKey key }
	e.mustOK(e.do(mentorOwn, `mutation($c: ID!) { createStreamKey(liveClassId: $c) { `+fields+` } }`,
		map[string]any{"c": string(c.ID)}), &created)
	k := created.CreateStreamKey
	if k.Key == nil || len(*k.Key) < 20 || !strings.HasPrefix(*k.Key, k.Prefix) || len(k.Prefix) != 8 {
		t.Fatalf("created key %+v", k)
	}
	if k.IngestURL == nil || *k.IngestURL != "http://liveclass.test/whip/"+string(c.ID) {
		t.Fatalf("ingestUrl %v", k.IngestURL)
	}
	if k.LiveClassID != string(c.ID) || k.CreatedBy == nil || *k.CreatedBy != string(e.users[mentorOwn].ID) || k.RevokedAt != nil {
		t.Fatalf("created key %+v", k)
	}
	if _, err := time.Parse(time.RFC3339, k.CreatedAt); err != nil {
		t.Fatalf("createdAt %q: %v", k.CreatedAt, err)
	}

	var listed struct{ StreamKeys []key }
	e.mustOK(e.do(admin, `query($c: ID!) { streamKeys(liveClassId: $c) { `+fields+` } }`, map[string]any{"c": string(c.ID)}), &listed)
	if len(listed.StreamKeys) != 1 || listed.StreamKeys[0].ID != k.ID || listed.StreamKeys[0].Key != nil || listed.StreamKeys[0].IngestURL != nil {
		t.Fatalf("streamKeys %+v: the secret must not be listed", listed.StreamKeys)
	}

	var revoked struct{ RevokeStreamKey key }
	e.mustOK(e.do(admin, `mutation($id: ID!) { revokeStreamKey(id: $id) { `+fields+` } }`, map[string]any{"id": k.ID}), &revoked)
	if revoked.RevokeStreamKey.RevokedAt == nil || revoked.RevokeStreamKey.Key != nil {
		t.Fatalf("revoked key %+v", revoked.RevokeStreamKey)
	}

	// Refusals: an interactive class, an unknown class or key.
	interactive := e.newClass(classSpec{startIn: time.Hour})
	for _, tc := range []struct {
		query string
		vars  map[string]any
		code  string
	}{
		{`mutation($c: ID!) { createStreamKey(liveClassId: $c) { id } }`, map[string]any{"c": string(interactive.ID)}, "BAD_USER_INPUT"},
		{`query($c: ID!) { streamKeys(liveClassId: $c) { id } }`, map[string]any{"c": string(interactive.ID)}, "BAD_USER_INPUT"},
		{`mutation($c: ID!) { createStreamKey(liveClassId: $c) { id } }`, map[string]any{"c": "nope"}, "NOT_FOUND"},
		{`mutation($id: ID!) { revokeStreamKey(id: $id) { id } }`, map[string]any{"id": "nope"}, "NOT_FOUND"},
	} {
		if r := e.do(admin, tc.query, tc.vars); r.code() != tc.code {
			t.Errorf("%s %v: got %s, want %s (%+v)", tc.query, tc.vars, r.code(), tc.code, r.Errors)
		}
	}
}
