package classes_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/store"
)

func ivs(in *classes.ClassInput) { in.Service = store.ServiceIVS }

func TestStreamKeyPermissions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(t, e.mentor, ivs)
	interactive := e.create(t, e.mentor, nil)

	// Who may create, list and revoke a broadcast class's keys.
	for _, tc := range []struct {
		name  string
		actor auth.Actor
		allow bool
		want  apperr.Kind
	}{
		{"anonymous", auth.Actor{}, false, apperr.Unauthenticated},
		{"student", e.student, false, apperr.Forbidden},
		{"other mentor", e.mentor2, false, apperr.Forbidden},
		{"instructor", e.mentor, true, 0},
		{"admin", e.admin, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nk, err := e.svc.CreateStreamKey(ctx, tc.actor, c.ID)
			_, lerr := e.svc.StreamKeys(ctx, tc.actor, c.ID)
			if !tc.allow {
				wantKind(t, err, tc.want)
				wantKind(t, lerr, tc.want)
				// The actor may not revoke a key the instructor made either.
				own, err := e.svc.CreateStreamKey(ctx, e.mentor, c.ID)
				if err != nil {
					t.Fatal(err)
				}
				_, err = e.svc.RevokeStreamKey(ctx, tc.actor, own.Key.ID)
				wantKind(t, err, tc.want)
				return
			}
			if err != nil || lerr != nil {
				t.Fatalf("CreateStreamKey: %v; StreamKeys: %v", err, lerr)
			}
			if _, err := e.svc.RevokeStreamKey(ctx, tc.actor, nk.Key.ID); err != nil {
				t.Fatalf("RevokeStreamKey: %v", err)
			}
		})
	}

	// Unknown classes and keys are NotFound; interactive classes have no keys.
	_, err := e.svc.CreateStreamKey(ctx, e.admin, "nope")
	wantKind(t, err, apperr.NotFound)
	_, err = e.svc.StreamKeys(ctx, e.admin, "nope")
	wantKind(t, err, apperr.NotFound)
	_, err = e.svc.RevokeStreamKey(ctx, e.admin, "nope")
	wantKind(t, err, apperr.NotFound)
	_, err = e.svc.CreateStreamKey(ctx, e.mentor, interactive.ID)
	wantKind(t, err, apperr.Invalid)
	_, err = e.svc.StreamKeys(ctx, e.mentor, interactive.ID)
	wantKind(t, err, apperr.Invalid)
}

func TestStreamKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(t, e.mentor, ivs)
	other := e.create(t, e.mentor, ivs)

	nk, err := e.svc.CreateStreamKey(ctx, e.mentor, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(nk.Secret) < 20 || nk.Key.Prefix != nk.Secret[:classes.StreamKeyPrefixLen] {
		t.Fatalf("secret %q, prefix %q", nk.Secret, nk.Key.Prefix)
	}
	if want := "https://school.example/whip/" + string(c.ID); nk.IngestURL != want {
		t.Fatalf("IngestURL = %q, want %q", nk.IngestURL, want)
	}
	if nk.Key.CreatedBy != e.mentor.UserID || !nk.Key.CreatedAt.Equal(t0) || nk.Key.RevokedAt != nil {
		t.Fatalf("key %+v", nk.Key)
	}
	// The secret itself is stored nowhere: only its hash and prefix.
	keys, err := e.svc.StreamKeys(ctx, e.admin, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || string(keys[0].Hash) != string(classes.HashStreamKey(nk.Secret)) || strings.Contains(string(keys[0].Hash), nk.Secret) {
		t.Fatalf("keys %+v", keys)
	}

	if err := e.svc.CheckStreamKey(ctx, c.ID, nk.Secret); err != nil {
		t.Fatalf("CheckStreamKey(valid): %v", err)
	}
	for _, tc := range []struct {
		class  store.ClassID
		secret string
	}{
		{c.ID, ""},              // missing
		{c.ID, nk.Secret + "x"}, // wrong
		{other.ID, nk.Secret},   // another class's
		{"nope", nk.Secret},     // no such class
	} {
		wantKind(t, e.svc.CheckStreamKey(ctx, tc.class, tc.secret), apperr.Unauthenticated)
	}

	// Rotation: a second key, then the first revoked.
	nk2, err := e.svc.CreateStreamKey(ctx, e.admin, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if nk2.Secret == nk.Secret {
		t.Fatal("two keys share a secret")
	}
	e.clock.Set(t0.Add(time.Minute))
	rk, err := e.svc.RevokeStreamKey(ctx, e.mentor, nk.Key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rk.RevokedAt == nil || !rk.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("revoked key %+v", rk)
	}
	wantKind(t, e.svc.CheckStreamKey(ctx, c.ID, nk.Secret), apperr.Unauthenticated)
	if err := e.svc.CheckStreamKey(ctx, c.ID, nk2.Secret); err != nil {
		t.Fatalf("CheckStreamKey(second key): %v", err)
	}

	// An ended class gets no new keys.
	if err := e.st.SetClassStatus(ctx, c.ID, store.StatusEnded); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.CreateStreamKey(ctx, e.mentor, c.ID)
	wantKind(t, err, apperr.Conflict)
}

func TestStreamKeyLimit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(t, e.mentor, ivs)
	var first classes.NewStreamKey
	for i := range classes.MaxActiveStreamKeys {
		nk, err := e.svc.CreateStreamKey(ctx, e.mentor, c.ID)
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		if i == 0 {
			first = nk
		}
	}
	_, err := e.svc.CreateStreamKey(ctx, e.mentor, c.ID)
	wantKind(t, err, apperr.Conflict)
	if _, err := e.svc.RevokeStreamKey(ctx, e.mentor, first.Key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateStreamKey(ctx, e.mentor, c.ID); err != nil {
		t.Fatalf("after revoking one: %v", err)
	}
}
