package rtc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"net/http/httptest"

	"github.com/liveclass/liveclass/client/rtc"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/signal"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
)

// waitTime bounds every wait of these tests.
const waitTime = 15 * time.Second

// server is the media part of a liveclass server in this process: a
// SQLite file, the room manager, the sfu on loopback and the signalling
// handler on a random port.
type server struct {
	t      *testing.T
	db     *sqlite.DB
	signer *jointoken.Signer
	url    string
	class  store.LiveClass
	host   store.User
}

func newServer(t *testing.T) *server {
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
	signer, err := jointoken.NewSigner([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	h, err := signal.New(signal.Config{Rooms: rooms, SFU: media, Tokens: signer, Classes: db, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	// The handler closes first, so that its connections end while the
	// room, sfu and database still stand.
	t.Cleanup(srv.Close)
	t.Cleanup(h.Close)
	s := &server{t: t, db: db, signer: signer, url: "ws" + strings.TrimPrefix(srv.URL, "http")}
	s.host = s.user("Hana Host", store.RoleMentor)
	now := time.Now()
	s.class = store.LiveClass{
		Title: "Go concurrency", InstructorID: s.host.ID,
		StartTime: now.Add(-time.Minute), EndTime: now.Add(time.Hour), Duration: 61,
		Service: store.ServiceChime, AccessLevel: store.RoleStudent, MaxParticipants: 10,
		Category: "programming", Level: store.LevelBeginner, IsFree: true, Status: store.StatusScheduled,
	}
	if err := db.CreateClass(ctx, &s.class); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *server) user(name string, role store.Role) store.User {
	s.t.Helper()
	u := store.User{Name: name, Email: fmt.Sprintf("%d@example.com", time.Now().UnixNano()), Role: role}
	if err := s.db.CreateUser(context.Background(), &u); err != nil {
		s.t.Fatal(err)
	}
	return u
}

func (s *server) token(u store.User, role jointoken.Role) string {
	s.t.Helper()
	now := time.Now()
	tok, err := s.signer.Sign(jointoken.Claims{
		ClassID: string(s.class.ID), UserID: string(u.ID), Name: u.Name, Role: role, Service: string(s.class.Service),
		ID: "tok-" + string(u.ID), IssuedAt: now, ExpiresAt: now.Add(time.Hour),
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// join dials with a log of every message; a local failure fails the test
// unless the participant is closing.
func (s *server) join(tok string) (*rtc.Participant, *rtc.Log) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	log := &rtc.Log{}
	p, err := rtc.Dial(ctx, s.url, tok, rtc.Options{
		Class:     string(s.class.ID),
		OnMessage: log.Record,
		OnError:   func(err error) { s.t.Errorf("participant: %v", err) },
	})
	if err != nil {
		s.t.Fatalf("join: %v", err)
	}
	s.t.Cleanup(p.Close)
	return p, log
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitTime)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestParticipant joins a host and a student through the real protocol:
// the host publishes, the student subscribes to the camera and receives
// video and audio; a chat is answered ok after its event; a host's
// request from the student is refused with FORBIDDEN, bad input names its
// field; restarts of both connections keep media flowing; and Close
// leaves the room.
func TestParticipant(t *testing.T) {
	s := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTime)
	defer cancel()
	host, hostLog := s.join(s.token(s.host, jointoken.RoleHost))
	u := s.user("Sam Student", store.RoleStudent)
	student, studentLog := s.join(s.token(u, jointoken.RoleAttendee))
	if student.ID() != string(u.ID) || student.Joined().You.Role != "ATTENDEE" || student.Joined().Resume == "" {
		t.Fatalf("joined: %+v", student.Joined())
	}
	if host.Joined().You.Role != "HOST" {
		t.Fatalf("host joined as %q", host.Joined().You.Role)
	}
	if err := host.PublishSynthetic(ctx, rtc.Media{Camera: true, Mic: true}); err != nil {
		t.Fatal(err)
	}
	camera := s.host.ID + "/camera"
	if _, err := studentLog.Wait(ctx, func(m rtc.Message) bool {
		var tr rtc.Tracks
		return m.Type == rtc.TypeTracks && m.Decode(&tr) == nil && tr.Has(string(camera)) && tr.Has(string(s.host.ID)+"/mic")
	}); err != nil {
		t.Fatalf("the host's tracks: %v", err)
	}
	if err := student.Subscribe(ctx, []rtc.Video{{Track: string(camera), Width: 320, Height: 180}}); err != nil {
		t.Fatal(err)
	}
	// The mapping came before the ok.
	if _, ok := studentLog.Last(func(m rtc.Message) bool {
		var mp rtc.Mapping
		if m.Type != rtc.TypeMapping || m.Decode(&mp) != nil {
			return false
		}
		for _, id := range mp.Mids {
			if id == string(camera) {
				return true
			}
		}
		return false
	}); !ok {
		t.Fatal("no mapping of the camera before the subscribe's ok")
	}
	eventually(t, "the student receives video and audio", func() bool {
		st := student.Stats()
		return st.VideoPackets > 10 && st.AudioPackets > 10
	})
	st := student.Stats()
	if st.Packets != st.VideoPackets+st.AudioPackets || st.Bytes == 0 || st.Expected < st.Packets/2 || len(st.Tracks) < 2 {
		t.Fatalf("stats: %+v", st)
	}
	if host.Stats().Packets != 0 {
		t.Fatalf("the host received %+v without anyone publishing to it", host.Stats())
	}

	// A chat's event reaches the sender before its ok.
	if err := student.Chat(ctx, "everyone", "hello"); err != nil {
		t.Fatal(err)
	}
	if _, ok := studentLog.Last(rtc.OfType("chat")); !ok {
		t.Fatal("no chat event before the chat's ok")
	}
	if _, err := hostLog.Wait(ctx, rtc.OfType("chat")); err != nil {
		t.Fatal(err)
	}
	// Refusals are typed errors carrying the protocol's code.
	_, err := student.Request(ctx, "mute", map[string]any{"participant": string(s.host.ID)})
	var e *rtc.Error
	if !errors.As(err, &e) || e.Code != "FORBIDDEN" || e.ID == 0 {
		t.Fatalf("a student's mute: %v, want FORBIDDEN", err)
	}
	if _, err := student.Request(ctx, "chat", map[string]any{"text": ""}); rtc.CodeOf(err) != "BAD_USER_INPUT" || !errors.As(err, &e) || e.Field != "text" {
		t.Fatalf("an empty chat: %v, want BAD_USER_INPUT on text", err)
	}
	if err := student.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	// ICE restarts of both connections: media keeps flowing.
	offers := studentLog.Count(rtc.OfType(rtc.TypeOffer))
	if err := student.RestartSubscriber(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a restarting subscriber offer", func() bool { return studentLog.Count(rtc.OfType(rtc.TypeOffer)) > offers })
	if err := host.RestartPublisher(ctx); err != nil {
		t.Fatal(err)
	}
	v := student.Stats().VideoPackets
	eventually(t, "video after both restarts", func() bool { return student.Stats().VideoPackets > v+10 })

	// Close leaves: the host sees the student go, and the socket ended.
	student.Close()
	if _, err := hostLog.Wait(ctx, func(m rtc.Message) bool {
		var l struct{ Participant, Reason string }
		return m.Type == "participant.left" && m.Decode(&l) == nil && l.Participant == string(u.ID) && l.Reason == "left"
	}); err != nil {
		t.Fatalf("the student's leave: %v", err)
	}
	if code := rtc.CloseCode(student.Err()); code != 1000 {
		t.Fatalf("the student's socket ended with %d (%v), want 1000", code, student.Err())
	}
	if err := student.Ping(ctx); err == nil {
		t.Fatal("a ping after Close was answered")
	}
}

// TestDialRefused checks that a refused join is the server's error, with
// its code.
func TestDialRefused(t *testing.T) {
	s := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	u := s.user("Eve", store.RoleStudent)
	tok := s.token(u, jointoken.RoleAttendee)
	for _, tc := range []struct {
		name, token, class, code string
	}{
		{"tampered token", tok[:len(tok)-2] + "xx", "", "UNAUTHENTICATED"},
		{"another class", tok, "some-other-class", "FORBIDDEN"},
	} {
		p, err := rtc.Dial(ctx, s.url, tc.token, rtc.Options{Class: tc.class})
		if p != nil || rtc.CodeOf(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	if _, err := rtc.Dial(ctx, "ws://127.0.0.1:1/rtc", tok, rtc.Options{}); err == nil || rtc.CodeOf(err) != "" {
		t.Errorf("dial of a closed port: %v", err)
	}
}
