package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

func TestSignupValidation(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	tests := []struct {
		name, email, password, userName string
		field                           string // "" means accepted
	}{
		{"ok", "ada@example.com", "correct horse", "Ada", ""},
		{"ok mixed case and spaces", "  Grace@Example.COM ", "correct horse", "  Grace  ", ""},
		{"ok single-label domain (the default admin@localhost)", "admin@localhost", "correct horse", "Admin", ""},
		{"empty email", "", "correct horse", "Ada", "email"},
		{"no at", "ada.example.com", "correct horse", "Ada", "email"},
		{"no domain", "ada@", "correct horse", "Ada", "email"},
		{"display name", "Ada <ada2@example.com>", "correct horse", "Ada", "email"},
		{"two addresses", "a@example.com, b@example.com", "correct horse", "Ada", "email"},
		{"too long email", strings.Repeat("a", 250) + "@example.com", "correct horse", "Ada", "email"},
		{"short password", "bob@example.com", "short", "Bob", "password"},
		{"long password", "bob@example.com", strings.Repeat("p", 129), "Bob", "password"},
		{"empty name", "bob@example.com", "correct horse", "   ", "name"},
		{"long name", "bob@example.com", "correct horse", strings.Repeat("n", 101), "name"},
		{"100-character name", "bob@example.com", "correct horse", strings.Repeat("ñ", 100), ""},
		{"control character in name", "carl@example.com", "correct horse", "Carl\x00", "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, err := f.st.CountUsers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			u, err := f.svc.Signup(ctx, tc.email, tc.password, tc.userName)
			after, cerr := f.st.CountUsers(ctx)
			if cerr != nil {
				t.Fatal(cerr)
			}
			if tc.field != "" {
				wantField(t, err, tc.field)
				if after != before {
					t.Fatalf("refused sign-up stored a user: %d → %d", before, after)
				}
				return
			}
			if err != nil {
				t.Fatalf("Signup: %v", err)
			}
			if u.Role != store.RoleStudent {
				t.Errorf("role = %s, want STUDENT", u.Role)
			}
			if u.Email != strings.ToLower(strings.TrimSpace(tc.email)) || u.Name != strings.TrimSpace(tc.userName) {
				t.Errorf("stored %q %q, want trimmed and lower-cased email and trimmed name", u.Email, u.Name)
			}
			if u.PasswordHash != "" {
				t.Error("Signup returned the password hash")
			}
			if after != before+1 {
				t.Fatalf("users %d → %d, want one more", before, after)
			}
		})
	}
}

func TestSignupDisabledAndTakenEmail(t *testing.T) {
	ctx := context.Background()
	off := newFixture(t, func(o *Options) { o.SignupEnabled = false })
	_, err := off.svc.Signup(ctx, "ada@example.com", "correct horse", "Ada")
	wantKind(t, err, apperr.Forbidden)
	if !strings.Contains(err.Error(), "sign-up is disabled") {
		t.Errorf("message %q does not say sign-up is disabled", err)
	}

	f := newFixture(t, nil)
	if _, err := f.svc.Signup(ctx, "ada@example.com", "correct horse", "Ada"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Signup(ctx, "ADA@example.com", "another pass", "Ada Two")
	wantKind(t, err, apperr.Conflict)
	if apperr.FieldOf(err) != "email" {
		t.Errorf("conflict names field %q, want email", apperr.FieldOf(err))
	}
	// The first account is untouched.
	if _, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "192.0.2.1:1000"); err != nil {
		t.Fatalf("first account cannot sign in after a refused duplicate: %v", err)
	}
}

func TestLoginAndAuthenticate(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u, _ := f.user(t, "ada@example.com", store.RoleMentor)

	sess, err := f.svc.Login(ctx, "  ADA@example.com", "correct horse", "192.0.2.1:4000")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if len(sess.Token) != 43 {
		t.Errorf("token %q has %d characters, want 43 (32 bytes base64url)", sess.Token, len(sess.Token))
	}
	if want := f.clk.Now().Add(7 * 24 * time.Hour); !sess.ExpiresAt.Equal(want) {
		t.Errorf("expires %v, want %v (default TTL)", sess.ExpiresAt, want)
	}
	if sess.User.ID != u.ID || sess.User.PasswordHash != "" {
		t.Errorf("session user = %+v", sess.User)
	}
	// Only the hash is stored.
	if _, err := f.st.SessionByHash(ctx, sess.Token); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("the raw token finds a session: %v", err)
	}
	if _, err := f.st.SessionByHash(ctx, hashToken(sess.Token)); err != nil {
		t.Errorf("the token's hash finds no session: %v", err)
	}
	a, err := f.svc.Authenticate(ctx, sess.Token)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if a != (Actor{UserID: u.ID, Role: store.RoleMentor, Name: u.Name}) {
		t.Errorf("actor = %+v", a)
	}
	for _, bad := range []string{"", "nonsense", sess.Token + "x", strings.Repeat("a", 4096)} {
		_, err := f.svc.Authenticate(ctx, bad)
		wantKind(t, err, apperr.Unauthenticated)
	}
}

func TestLoginSameErrorForUnknownEmailAndWrongPassword(t *testing.T) {
	// Real hash costs: the point is that both paths spend one.
	f := newFixture(t, func(o *Options) {
		o.HashParams = HashParams{}
		o.Limits = RateLimits{AccountFailures: -1, AddressAttempts: -1}
	})
	ctx := context.Background()
	f.user(t, "ada@example.com", store.RoleStudent)
	cases := map[string]string{
		"wrong password":   "ada@example.com",
		"unknown email":    "nobody@example.com",
		"malformed email":  "not an email",
		"no password hash": "",
	}
	// An account without a password must answer the same way.
	if _, err := f.svc.AddUser(ctx, "nopw@example.com", "No Password", "", store.RoleStudent); err != nil {
		t.Fatal(err)
	}
	cases["no password hash"] = "nopw@example.com"

	times := map[string][]time.Duration{}
	var first error
	for range 5 {
		for name, email := range cases {
			start := time.Now()
			_, err := f.svc.Login(ctx, email, "wrong password", "192.0.2.1:1")
			times[name] = append(times[name], time.Since(start))
			wantKind(t, err, apperr.Unauthenticated)
			if first == nil {
				first = err
			}
			if err.Error() != first.Error() || err.Error() != "invalid email or password" {
				t.Fatalf("%s: %q differs from %q", name, err, first)
			}
		}
	}
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	ref := median(times["wrong password"])
	for name, d := range times {
		// Without the dummy hash an unknown email answers about 100 times
		// faster; a third is far outside scheduling noise either way.
		if m := median(d); m < ref/3 {
			t.Errorf("%s: median %v, wrong password %v: the answer time tells them apart", name, m, ref)
		}
	}
}

func TestLoginRateLimitPerAccount(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.user(t, "ada@example.com", store.RoleStudent)
	// Five failures from five addresses: the account limit is not fooled
	// by switching addresses.
	for i := range 5 {
		_, err := f.svc.Login(ctx, "ada@example.com", "wrong password", fmt.Sprintf("192.0.2.%d:1", i+1))
		wantKind(t, err, apperr.Unauthenticated)
		f.clk.Advance(time.Minute)
	}
	_, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "198.51.100.7:1")
	wantKind(t, err, apperr.TooMany)
	d, ok := RetryAfter(err)
	// The first failure was 5 minutes ago; it leaves the 15-minute window in 10.
	if !ok || d != 10*time.Minute {
		t.Fatalf("RetryAfter = %v, %v; want 10m", d, ok)
	}
	if !strings.Contains(err.Error(), "try again in 10 minutes") {
		t.Errorf("message %q does not say when to retry", err)
	}
	// Another account from the same addresses is not affected.
	f.user(t, "bob@example.com", store.RoleStudent)
	if _, err := f.svc.Login(ctx, "bob@example.com", "correct horse", "192.0.2.1:1"); err != nil {
		t.Fatalf("another account is locked too: %v", err)
	}
	// An unknown email is limited the same way, so the limit reveals nothing.
	for range 5 {
		_, err := f.svc.Login(ctx, "ghost@example.com", "x", "192.0.2.9:1")
		wantKind(t, err, apperr.Unauthenticated)
	}
	_, err = f.svc.Login(ctx, "ghost@example.com", "x", "192.0.2.9:1")
	wantKind(t, err, apperr.TooMany)

	// It recovers with the clock.
	f.clk.Advance(10*time.Minute - time.Second)
	_, err = f.svc.Login(ctx, "ada@example.com", "correct horse", "198.51.100.7:1")
	wantKind(t, err, apperr.TooMany)
	f.clk.Advance(time.Second)
	if _, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "198.51.100.7:1"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// A success clears the failures: five more are allowed.
	for range 5 {
		_, err := f.svc.Login(ctx, "ada@example.com", "wrong password", "198.51.100.7:1")
		wantKind(t, err, apperr.Unauthenticated)
	}
}

func TestLoginRateLimitPerAddress(t *testing.T) {
	if got := (RateLimits{}).withDefaults().AddressAttempts; got != 120 {
		t.Fatalf("default address limit = %d, want 120 (a class signing in through one NAT)", got)
	}
	f := newFixture(t, func(o *Options) { o.Limits.AddressAttempts = 30 })
	ctx := context.Background()
	f.user(t, "ada@example.com", store.RoleStudent)
	for i := range 30 {
		_, err := f.svc.Login(ctx, fmt.Sprintf("user%d@example.com", i), "x", "203.0.113.5:1234")
		wantKind(t, err, apperr.Unauthenticated)
	}
	_, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "203.0.113.5:9999")
	wantKind(t, err, apperr.TooMany)
	if d, ok := RetryAfter(err); !ok || d != time.Minute {
		t.Fatalf("RetryAfter = %v, %v; want 1m", d, ok)
	}
	if !strings.Contains(err.Error(), "try again in 60 seconds") {
		t.Errorf("message %q does not say when to retry", err)
	}
	// Another address is fine.
	if _, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "203.0.113.6:1"); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Minute)
	if _, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "203.0.113.5:1"); err != nil {
		t.Fatalf("after a minute: %v", err)
	}

	// IPv6 addresses count by /64.
	for i := range 30 {
		_, err := f.svc.Login(ctx, "x@example.com", "x", fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1))
		if i < 5 {
			wantKind(t, err, apperr.Unauthenticated)
		}
	}
	_, err = f.svc.Login(ctx, "ada@example.com", "correct horse", "[2001:db8:1:2:ffff::1]:1")
	wantKind(t, err, apperr.TooMany)
	if !strings.Contains(err.Error(), "from this address") {
		t.Errorf("message %q does not name the address limit", err)
	}
	if _, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "[2001:db8:1:3::1]:1"); err != nil {
		t.Fatalf("another /64: %v", err)
	}
}

func TestLimiterStaysBounded(t *testing.T) {
	l := newLimiter(3, time.Minute, 100)
	now := time.Now()
	for i := range 10000 {
		l.record(fmt.Sprintf("k%d", i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := l.size(); n > 100 {
		t.Fatalf("limiter holds %d keys, want at most 100", n)
	}
	// The newest keys are the ones kept.
	if d := l.wait("k9999", now.Add(10*time.Second)); d != 0 {
		t.Fatalf("one event of 3 allowed should not wait, got %v", d)
	}
	l.record("k9999", now.Add(10*time.Second))
	l.record("k9999", now.Add(10*time.Second))
	if d := l.wait("k9999", now.Add(10*time.Second)); d <= 0 {
		t.Fatal("k9999 was evicted though it was the newest key")
	}
	// Expired keys are dropped when the map fills.
	later := now.Add(time.Hour)
	for i := range 100 {
		l.record(fmt.Sprintf("new%d", i), later)
	}
	if n := l.size(); n != 100 {
		t.Fatalf("after expiry, %d keys, want the 100 new ones", n)
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:8080":           "192.0.2.1",
		"192.0.2.1":                "192.0.2.1",
		"[::ffff:192.0.2.1]:80":    "192.0.2.1",
		"[2001:db8::1]:443":        "2001:db8::/64",
		"2001:db8:0:0:abcd::1":     "2001:db8::/64",
		"[fe80::1%eth0]:1":         "fe80::/64",
		"not-an-ip":                "not-an-ip",
		"@unix-socket-client:1234": "@unix-socket-client",
	} {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSessionExpiryAndLogout(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.SessionTTL = time.Hour })
	ctx := context.Background()
	f.user(t, "ada@example.com", store.RoleStudent)
	sess, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Hour - time.Second)
	if _, err := f.svc.Authenticate(ctx, sess.Token); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	f.clk.Advance(time.Second)
	_, err = f.svc.Authenticate(ctx, sess.Token)
	wantKind(t, err, apperr.Unauthenticated)
	if _, err := f.st.SessionByHash(ctx, hashToken(sess.Token)); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("expired session still stored: %v", err)
	}

	s2, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	s3, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Logout(ctx, s2.Token); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Authenticate(ctx, s2.Token)
	wantKind(t, err, apperr.Unauthenticated)
	if err := f.svc.Logout(ctx, s2.Token); err != nil {
		t.Fatalf("second logout: %v", err)
	}
	// Other sessions of the same user stay.
	if _, err := f.svc.Authenticate(ctx, s3.Token); err != nil {
		t.Fatalf("logout ended another session: %v", err)
	}
	// The sweep removes expired sessions.
	f.clk.Advance(2 * time.Hour)
	if err := f.svc.DeleteExpiredSessions(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.SessionByHash(ctx, hashToken(s3.Token)); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("sweep left an expired session: %v", err)
	}
}

func TestDeletedUserSessionIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	_, admin := f.user(t, "root@example.com", store.RoleAdmin)
	u, _ := f.user(t, "ada@example.com", store.RoleStudent)
	sess, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DeleteUser(ctx, admin, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Authenticate(ctx, sess.Token)
	wantKind(t, err, apperr.Unauthenticated)
}

func TestRoleChangeTakesEffectOnNextRequest(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.user(t, "ada@example.com", store.RoleStudent)
	sess, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetRole(ctx, "Ada@Example.com", store.RoleMentor); err != nil {
		t.Fatal(err)
	}
	a, err := f.svc.Authenticate(ctx, sess.Token)
	if err != nil || a.Role != store.RoleMentor {
		t.Fatalf("after SetRole: %+v, %v", a, err)
	}
	wantField(t, f.svc.SetRole(ctx, "ada@example.com", "ROOT"), "role")
	wantKind(t, f.svc.SetRole(ctx, "nobody@example.com", store.RoleAdmin), apperr.NotFound)
}

func TestResetPassword(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.user(t, "ada@example.com", store.RoleStudent)
	wantField(t, f.svc.ResetPassword(ctx, "ada@example.com", "short"), "password")
	wantKind(t, f.svc.ResetPassword(ctx, "nobody@example.com", "long enough"), apperr.NotFound)
	// A refused reset keeps the old password.
	old, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ResetPassword(ctx, "ada@example.com", "battery staple"); err != nil {
		t.Fatal(err)
	}
	// A reset signs the account out everywhere.
	_, err = f.svc.Authenticate(ctx, old.Token)
	wantKind(t, err, apperr.Unauthenticated)
	_, err = f.svc.Login(ctx, "ada@example.com", "correct horse", "192.0.2.1:1")
	wantKind(t, err, apperr.Unauthenticated)
	if _, err := f.svc.Login(ctx, "ada@example.com", "battery staple", "192.0.2.1:1"); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

func TestAddUserWithoutPasswordCannotSignIn(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u, err := f.svc.AddUser(ctx, "ada@example.com", "Ada", "", store.RoleMentor)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := f.st.UserByID(ctx, u.ID)
	if err != nil || stored.PasswordHash != "" || stored.Role != store.RoleMentor {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	_, err = f.svc.Login(ctx, "ada@example.com", "", "192.0.2.1:1")
	wantKind(t, err, apperr.Unauthenticated)
	_, err = f.svc.AddUser(ctx, "bob@example.com", "Bob", "", "TEACHER")
	wantField(t, err, "role")
}

func TestEnsureAdmin(t *testing.T) {
	ctx := context.Background()
	t.Run("generates a password once", func(t *testing.T) {
		f := newFixture(t, nil)
		f.user(t, "student@example.com", store.RoleStudent)
		created, pw, err := f.svc.EnsureAdmin(ctx, "Admin@Example.com", "")
		if err != nil || !created || len(pw) < 20 {
			t.Fatalf("EnsureAdmin = %v, %q, %v; want created with a generated password", created, pw, err)
		}
		sess, err := f.svc.Login(ctx, "admin@example.com", pw, "192.0.2.1:1")
		if err != nil || sess.User.Role != store.RoleAdmin {
			t.Fatalf("signing in with the generated password: %+v, %v", sess.User, err)
		}
		n, err := f.st.CountUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			created, pw, err := f.svc.EnsureAdmin(ctx, "other@example.com", "")
			if err != nil || created || pw != "" {
				t.Fatalf("second EnsureAdmin = %v, %q, %v; want nothing done", created, pw, err)
			}
		}
		if m, err := f.st.CountUsers(ctx); err != nil || m != n {
			t.Fatalf("users %d → %d (%v): a second admin was made", n, m, err)
		}
	})
	t.Run("uses the given password", func(t *testing.T) {
		f := newFixture(t, nil)
		created, pw, err := f.svc.EnsureAdmin(ctx, "admin@example.com", "given password")
		if err != nil || !created || pw != "" {
			t.Fatalf("EnsureAdmin = %v, %q, %v", created, pw, err)
		}
		if _, err := f.svc.Login(ctx, "admin@example.com", "given password", "192.0.2.1:1"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("refuses a bad password or email", func(t *testing.T) {
		f := newFixture(t, nil)
		_, _, err := f.svc.EnsureAdmin(ctx, "admin@example.com", "short")
		wantField(t, err, "password")
		_, _, err = f.svc.EnsureAdmin(ctx, "", "")
		wantField(t, err, "email")
		if n, err := f.st.CountUsers(ctx); err != nil || n != 0 {
			t.Fatalf("users = %d, %v; want none", n, err)
		}
	})
	t.Run("two nodes at once make one admin", func(t *testing.T) {
		f := newFixture(t, nil)
		other := New(f.st, Options{Now: f.clk.Now, HashParams: fastHash()})
		var wg sync.WaitGroup
		created := make(chan bool, 2)
		for _, svc := range []*Service{f.svc, other} {
			wg.Go(func() {
				c, _, err := svc.EnsureAdmin(ctx, "admin@example.com", "given password")
				if err != nil {
					t.Errorf("EnsureAdmin: %v", err)
				}
				created <- c
			})
		}
		wg.Wait()
		close(created)
		n := 0
		for c := range created {
			if c {
				n++
			}
		}
		if users, err := f.st.CountUsers(ctx); n != 1 || err != nil || users != 1 {
			t.Fatalf("%d reported created, %d users (%v); want one", n, users, err)
		}
	})
	t.Run("promotes an existing account", func(t *testing.T) {
		f := newFixture(t, nil)
		u, _ := f.user(t, "ada@example.com", store.RoleMentor)
		created, pw, err := f.svc.EnsureAdmin(ctx, "ada@example.com", "")
		if err != nil || created || pw != "" {
			t.Fatalf("EnsureAdmin = %v, %q, %v", created, pw, err)
		}
		got, err := f.st.UserByID(ctx, u.ID)
		if err != nil || got.Role != store.RoleAdmin {
			t.Fatalf("role = %s, %v; want ADMIN", got.Role, err)
		}
		if _, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "192.0.2.1:1"); err != nil {
			t.Fatalf("the promoted account's password changed: %v", err)
		}
	})
}

func TestOnUserChange(t *testing.T) {
	var mu sync.Mutex
	var got []string
	f := newFixture(t, func(o *Options) {
		o.OnUserChange = func(kind string, u store.User) {
			mu.Lock()
			defer mu.Unlock()
			if u.PasswordHash != "" {
				t.Error("OnUserChange got a password hash")
			}
			got = append(got, kind+" "+u.Email)
		}
	})
	ctx := context.Background()
	_, admin := f.user(t, "root@example.com", store.RoleAdmin)
	u, err := f.svc.Signup(ctx, "ada@example.com", "correct horse", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	name := "Ada L."
	if _, err := f.svc.UpdateUser(ctx, admin, u.ID, UserPatch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DeleteUser(ctx, admin, u.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{"create root@example.com", "create ada@example.com", "update ada@example.com", "delete ada@example.com"}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestConcurrentLogins(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxConcurrentHashes = 1 })
	ctx := context.Background()
	f.user(t, "ada@example.com", store.RoleStudent)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := f.svc.Login(ctx, "ada@example.com", "correct horse", fmt.Sprintf("192.0.2.%d:1", i))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A caller that gives up while queued for the hash gets its context
	// error instead of waiting on.
	f.svc.hashSem <- struct{}{}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err := f.svc.acquire(cctx)
	<-f.svc.hashSem
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with a cancelled context while the slot is taken: %v", err)
	}
}

// BenchmarkAuthenticate is the per-request cost of a bearer token on a
// real SQLite file.
func BenchmarkAuthenticate(b *testing.B) {
	f := newFixture(b, nil)
	ctx := context.Background()
	f.user(b, "ada@example.com", store.RoleStudent)
	sess, err := f.svc.Login(ctx, "ada@example.com", "correct horse", "192.0.2.1:1")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	reportCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.svc.Authenticate(ctx, sess.Token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
