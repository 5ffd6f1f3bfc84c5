package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/config"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/signal"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
)

// mediaServer is the media part of a liveclass server in this process: a
// SQLite file, the room manager, the sfu on loopback and the signalling
// handler at /rtc on a random port, with join tokens signed by the key
// serve derives from tokenKey.
type mediaServer struct {
	url      string
	db       *sqlite.DB
	tokenKey string
}

func newMediaServer(t *testing.T) *mediaServer {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "live.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	rooms := room.NewManager(room.Options{Store: db, Logger: log})
	media, err := sfu.New(sfu.Config{IncludeLoopback: true, DisableTCP: true, Logger: log, Events: signal.MediaEvents(rooms, log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = media.Close() })
	rooms.SetMedia(signal.RoomMedia(media))
	key := "room-load-test-token-key-of-32-bytes-or-more"
	signer, err := jointoken.NewSigner(deriveKey(key, "join"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := signal.New(signal.Config{Rooms: rooms, SFU: media, Tokens: signer, Classes: db, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /rtc", h)
	srv := httptest.NewServer(mux)
	// The handler closes first, so that its connections end while the
	// room, sfu and database still stand.
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)
	return &mediaServer{url: srv.URL, db: db, tokenKey: key}
}

// class creates a CHIME class and n students, and writes the students'
// IDs to a file for --users.
func (m *mediaServer) class(t *testing.T, n int) (store.ClassID, string) {
	t.Helper()
	ctx := context.Background()
	var ids []string
	var host store.UserID
	for i := range n + 1 {
		u := store.User{Name: fmt.Sprintf("Load %d", i), Email: fmt.Sprintf("load%d@example.com", i), Role: store.RoleStudent}
		if i == 0 {
			u.Role = store.RoleMentor
		}
		if err := m.db.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			host = u.ID
			continue
		}
		ids = append(ids, string(u.ID))
	}
	now := time.Now()
	c := store.LiveClass{
		Title: "Load", InstructorID: host, StartTime: now.Add(-time.Minute), EndTime: now.Add(time.Hour), Duration: 61,
		Service: store.ServiceChime, AccessLevel: store.RoleStudent, MaxParticipants: 50,
		Category: "test", Level: store.LevelBeginner, IsFree: true, Status: store.StatusScheduled,
	}
	if err := m.db.CreateClass(ctx, &c); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(t.TempDir(), "users.txt")
	if err := os.WriteFile(users, []byte(strings.Join(ids, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return c.ID, users
}

// TestLoadRoom runs the room load tester end to end against the media
// server in this process: four participants, two cameras in three
// layers, a screen share and four microphones, for two seconds.
func TestLoadRoom(t *testing.T) {
	m := newMediaServer(t)
	class, users := m.class(t, 4)
	o := roomOptions{
		url: m.url, classes: 1, participants: 4, cameras: 2, screens: 1, mics: 4, speakers: 1,
		tiles: 16, tileW: 320, tileH: 180, screenW: 1280, screenH: 720,
		joinRate: 20, settle: 1500 * time.Millisecond, duration: 2 * time.Second,
		tokenKey: m.tokenKey, classIDs: []string{string(class)}, usersFile: users,
		shards: 1, serverPIDs: []int{os.Getpid()},
	}
	rep, err := runRoomTest(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.print(&out)
	t.Log("\n" + out.String())

	if rep.joinsOK != 4 || rep.joinsFail != 0 {
		t.Fatalf("joins: %d ok, %d failed (%v); want 4 and 0", rep.joinsOK, rep.joinsFail, rep.joinErrs)
	}
	// Every participant sees someone's video: the camera publishers each
	// other, the others both cameras and the screen.
	if len(rep.ttff) != 4 {
		t.Fatalf("%d participants received a keyframe, want 4", len(rep.ttff))
	}
	// Asked for: the two publishers one camera each, the two others two
	// cameras; three screen views.
	if rep.wantCams != 6 || rep.wantScreens != 3 {
		t.Errorf("asked for %d camera tiles and %d screens, want 6 and 3", rep.wantCams, rep.wantScreens)
	}
	d := rep.delta
	if d.video == 0 || d.audio == 0 || d.sentPkts == 0 {
		t.Fatalf("in the measured window: %d video and %d audio packets received, %d sent", d.video, d.audio, d.sentPkts)
	}
	// The 320×180 tiles get the lowest layer only; the screen arrives.
	if d.layerBytes[0] == 0 || d.layerBytes[3] == 0 || d.layerBytes[2] != 0 {
		t.Errorf("received bytes by layer %v: want the lowest camera layer and the screen, never the top layer", d.layerBytes)
	}
	if lost := int64(d.expected) - int64(d.got); float64(lost) > 0.05*float64(d.expected) {
		t.Errorf("lost %d of %d packets on loopback", lost, d.expected)
	}
	if histPercentile(rep.delayHalf[1], 0.5) <= 0 {
		t.Error("no one-way delay measured in the second half")
	}
	for _, want := range []string{"joins: 4 ok, 0 failed", "time to first video frame", "bitrate held:", "one-way delay, second half", "tester CPU:", "server pid"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestLoadRoomFlags checks the command's registration and its refusals.
func TestLoadRoomFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"loadtest", "room", "--help"}, exitOK, "--join-rate"},
		{[]string{"loadtest", "room", "--tile", "big"}, exitUsage, "--tile"},
		{[]string{"loadtest", "room", "--speakers", "60"}, exitUsage, "--speakers"},
		{[]string{"loadtest", "room", "--token-key", "k"}, exitUsage, "--class"},
		{[]string{"loadtest", "room", "--shard", "1/2"}, exitUsage, "--shard needs --class"},
		{[]string{"loadtest", "room"}, exitUsage, "password"},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), Env{Args: tc.args, Stdout: &stdout, Stderr: &stderr})
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d and %q", tc.args, code, stdout.String()+stderr.String(), tc.code, tc.want)
		}
	}
}

func TestVP8KeyframeStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"keyframe, 15-bit picture ID", []byte{0x90, 0x80, 0x80, 0x01, 0x00, 0, 0, 0x9d}, true},
		{"inter frame", []byte{0x90, 0x80, 0x80, 0x01, 0x01}, false},
		{"continuation", []byte{0x80, 0x80, 0x80, 0x01, 0x00}, false},
		{"no extension", []byte{0x10, 0x00}, true},
		{"7-bit picture ID, TL0PICIDX, TID", []byte{0x90, 0xe0, 0x05, 0x01, 0x20, 0x00}, true},
		{"truncated", []byte{0x90, 0x80}, false},
	} {
		if got := vp8KeyframeStart(tc.b); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestLoadRoomTokensFromAPI checks the tester's other source of join
// tokens against the whole server: the admin creates the classes, every
// participant signs up, enrolls and is granted a token for its class.
func TestLoadRoomTokensFromAPI(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, "", map[string]string{"signin_rate_limit": "0"})
	srv := start(t, cfg)
	o := roomOptions{
		url: srv.url, classes: 2, participants: 2, adminEmail: "admin@localhost", adminPassword: adminPassword, shards: 1,
	}
	tokens, err := roomTokens(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(dir, config.TokenKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jointoken.NewSigner(deriveKey(strings.TrimSpace(string(key)), "join"))
	if err != nil {
		t.Fatal(err)
	}
	classOf := map[string]int{}
	users := map[string]bool{}
	for i, tok := range tokens {
		cl, err := signer.Verify(tok, time.Now())
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if cl.Service != "CHIME" || cl.Role != jointoken.RoleAttendee {
			t.Errorf("token %d: %+v", i, cl)
		}
		classOf[cl.ClassID]++
		users[cl.UserID] = true
		// Participants 0 and 1 join the first class, 2 and 3 the second.
		if i%2 == 1 {
			first, _ := signer.Verify(tokens[i-1], time.Now())
			if first.ClassID != cl.ClassID {
				t.Errorf("participants %d and %d got tokens for different classes", i-1, i)
			}
		}
	}
	if len(classOf) != 2 || len(users) != 4 {
		t.Fatalf("tokens for %d classes and %d users, want 2 and 4", len(classOf), len(users))
	}
}
