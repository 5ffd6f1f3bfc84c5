package audience

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
)

// TestBanSurvivesRestart: a ban holds across a new hub over the same
// database, a host's welcome lists it, and unban lets the user back in
// (for good: a further restart does not bring the ban back).
func TestBanSurvivesRestart(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	troll := e.user("troll", store.RoleStudent)
	tc, _ := e.join(e.token(e.class, troll, jointoken.RoleAttendee, nil))
	kind := e.user("kind", store.RoleStudent)

	host.ok(map[string]any{"type": "ban", "user": string(troll.ID)})
	if code := tc.closed(); code != CloseBanned {
		t.Fatalf("banned close = %d, want %d", code, CloseBanned)
	}
	ev := host.wait(TypeBanned, func(m msg) bool { return m.str("user") == string(troll.ID) })
	if ev.str("name") != "troll" || ev.str("since") == "" {
		t.Fatalf("hosts' banned event = %s, want the user's name and the ban's time", ev.raw)
	}
	// Banning again is no error and changes nothing.
	host.ok(map[string]any{"type": "ban", "user": string(troll.ID)})
	host.refused(map[string]any{"type": "ban", "user": "no-such-user"}, "NOT_FOUND", "")

	e.restart()
	m, code := e.refusedHello(map[string]any{"type": "hello", "v": 1, "token": e.token(e.class, troll, jointoken.RoleAttendee, nil)})
	if code != CloseBanned || m.str("reason") != ReasonBanned || m.str("code") != "FORBIDDEN" {
		t.Fatalf("banned user's hello after a restart: %s close %d", m.raw, code)
	}
	host, hw := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	if len(hw.Banned) != 1 || hw.Banned[0].User != troll.ID || hw.Banned[0].Name != "troll" || hw.Banned[0].Since.IsZero() || hw.Banned[0].Type != "" {
		t.Fatalf("host's welcome after a restart lists bans %+v", hw.Banned)
	}
	kc, kw := e.join(e.token(e.class, kind, jointoken.RoleAttendee, nil))
	if kw.Banned != nil {
		t.Fatalf("a viewer's welcome lists bans: %+v", kw.Banned)
	}

	// Only a host lifts a ban, and only a ban there is.
	kc.refused(map[string]any{"type": "unban", "user": string(troll.ID)}, "FORBIDDEN", "")
	host.refused(map[string]any{"type": "unban", "user": string(kind.ID)}, "NOT_FOUND", "")
	host.refused(map[string]any{"type": "unban"}, "BAD_USER_INPUT", "")
	host.ok(map[string]any{"type": "unban", "user": string(troll.ID)})
	host.wait(TypeUnbanned, func(m msg) bool { return m.str("user") == string(troll.ID) })
	if kc.count(TypeUnbanned) != 0 {
		t.Fatal("a viewer was told of an unban")
	}
	host.refused(map[string]any{"type": "unban", "user": string(troll.ID)}, "NOT_FOUND", "")
	bans, err := e.db.AudienceBans(context.Background(), e.class.ID)
	if err != nil || len(bans) != 0 {
		t.Fatalf("stored bans after unban = %+v, %v", bans, err)
	}
	back, w := e.join(e.token(e.class, troll, jointoken.RoleAttendee, nil))
	if w.Muted {
		t.Fatal("the unbanned user is still muted")
	}
	back.ok(map[string]any{"type": "chat", "text": "I will behave"})

	e.restart()
	e.join(e.token(e.class, troll, jointoken.RoleAttendee, nil))
	if _, hw := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil)); len(hw.Banned) != 0 {
		t.Fatalf("host's welcome lists a lifted ban: %+v", hw.Banned)
	}
}

// failingStore is the real store, with ban writes that fail on demand.
type failingStore struct {
	Store
	fail atomic.Bool
}

var errDown = errors.New("database is down")

func (s *failingStore) BanAudienceUser(ctx context.Context, class store.ClassID, user, by store.UserID) error {
	if s.fail.Load() {
		return errDown
	}
	return s.Store.BanAudienceUser(ctx, class, user, by)
}

func (s *failingStore) UnbanAudienceUser(ctx context.Context, class store.ClassID, user store.UserID) error {
	if s.fail.Load() {
		return errDown
	}
	return s.Store.UnbanAudienceUser(ctx, class, user)
}

// TestBanStoreFails: a ban or unban the store did not take changes
// nothing, and the host is told.
func TestBanStoreFails(t *testing.T) {
	var fs *failingStore
	var (
		banMu  sync.Mutex
		banned []store.UserID // what OnBan was told
	)
	e := newEnv(t, envOptions{opt: func(o *Options) {
		fs = &failingStore{Store: o.Store}
		o.Store = fs
		o.OnBan = func(class store.ClassID, user store.UserID) {
			banMu.Lock()
			defer banMu.Unlock()
			banned = append(banned, user)
		}
	}})
	onBan := func() []store.UserID {
		banMu.Lock()
		defer banMu.Unlock()
		return slices.Clone(banned)
	}
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	troll := e.user("troll", store.RoleStudent)
	tc, _ := e.join(e.token(e.class, troll, jointoken.RoleAttendee, nil))

	fs.fail.Store(true)
	m := host.refused(map[string]any{"type": "ban", "user": string(troll.ID)}, "INTERNAL_SERVER_ERROR", "")
	if m.str("message") != "the server failed" {
		t.Fatalf("a store failure tells the host %q", m.str("message"))
	}
	// Nothing changed: the user stays, chats, and may open another tab.
	tc.ok(map[string]any{"type": "chat", "text": "still here"})
	e.join(e.token(e.class, troll, jointoken.RoleAttendee, nil))
	if host.count(TypeBanned) != 0 || tc.count(TypeBanned) != 0 || len(onBan()) != 0 {
		t.Fatalf("a ban the store refused was announced (OnBan told of %v)", onBan())
	}
	if _, hw := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil)); len(hw.Banned) != 0 {
		t.Fatalf("a ban the store refused is listed: %+v", hw.Banned)
	}

	// The same for lifting one: the ban stays.
	fs.fail.Store(false)
	host.ok(map[string]any{"type": "ban", "user": string(troll.ID)})
	// The stored ban reached the wiring (which ends the user's video).
	if got := onBan(); !slices.Equal(got, []store.UserID{troll.ID}) {
		t.Fatalf("OnBan told of %v, want %s once", got, troll.ID)
	}
	fs.fail.Store(true)
	host.refused(map[string]any{"type": "unban", "user": string(troll.ID)}, "INTERNAL_SERVER_ERROR", "")
	if _, code := e.refusedHello(map[string]any{"type": "hello", "v": 1, "token": e.token(e.class, troll, jointoken.RoleAttendee, nil)}); code != CloseBanned {
		t.Fatalf("after a failed unban the user's hello closes %d, want %d", code, CloseBanned)
	}
	bans, err := e.db.AudienceBans(context.Background(), e.class.ID)
	if err != nil || len(bans) != 1 {
		t.Fatalf("stored bans after a failed unban = %+v, %v", bans, err)
	}
}
