package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/liveclass/liveclass/client"
	"github.com/liveclass/liveclass/client/rtc"
	"github.com/liveclass/liveclass/internal/server"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/engine"
	"github.com/liveclass/liveclass/internal/web"
)

// mediaFlags put the media plane on free ports, with loopback candidates,
// so that tests run beside each other and beside a server on the defaults.
func mediaFlags() map[string]string {
	return map[string]string{"rtc_udp_port": "0", "rtc_tcp_port": "0", "rtc_loopback_candidates": "true"}
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rtcPeer is a browser stand-in speaking docs/protocol.md over the real
// /rtc: a client/rtc participant and the log of its server messages.
type rtcPeer struct {
	*rtc.Participant
	t    *testing.T
	name string
	log  rtc.Log
}

// joinRTC connects to baseURL's /rtc with a join token and returns once
// the server answered "joined".
func joinRTC(t *testing.T, name, baseURL, token string) *rtcPeer {
	t.Helper()
	p := &rtcPeer{t: t, name: name}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	p.Participant, err = rtc.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+server.RTCPath, token, rtc.Options{
		OnMessage: p.log.Record,
		OnError:   func(err error) { t.Errorf("%s: %v", name, err) },
	})
	if err != nil {
		t.Fatalf("%s: join %s: %v", name, server.RTCPath, err)
	}
	t.Cleanup(p.Close)
	return p
}

// wait returns the first server message that match accepts.
func (p *rtcPeer) wait(what string, match func(rtc.Message) bool) rtc.Message {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := p.log.Wait(ctx, match)
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
	return m
}

// publish offers a VP8 camera and an Opus microphone and sends synthetic
// frames until the peer closes.
func (p *rtcPeer) publish() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.PublishSynthetic(ctx, rtc.Media{Camera: true, Mic: true}); err != nil {
		p.t.Fatalf("%s: publish: %v", p.name, err)
	}
}

// classWatch is a graphql-transport-ws subscription to onUpdateLiveClass
// of one class, keeping every update it delivers.
type classWatch struct {
	conn    *websocket.Conn
	mu      sync.Mutex
	updates []client.LiveClass
	done    chan struct{}
}

func watchClass(t *testing.T, baseURL, token, classID string) *classWatch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("dial /graphql: %v", err)
	}
	w := &classWatch{conn: conn, done: make(chan struct{})}
	if err := wsjson.Write(ctx, conn, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}}); err != nil {
		t.Fatal(err)
	}
	var ack struct{ Type string }
	if err := wsjson.Read(ctx, conn, &ack); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init: %+v %v", ack, err)
	}
	q := `subscription($id: ID!) { onUpdateLiveClass(filter: {id: {eq: $id}}) { id status currentParticipants } }`
	if err := wsjson.Write(ctx, conn, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": q, "variables": map[string]any{"id": classID}}}); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		for {
			var m struct {
				Type    string `json:"type"`
				Payload struct {
					Data struct {
						OnUpdateLiveClass client.LiveClass `json:"onUpdateLiveClass"`
					} `json:"data"`
				} `json:"payload"`
			}
			if err := wsjson.Read(context.Background(), conn, &m); err != nil {
				return
			}
			switch m.Type {
			case "ping":
				_ = wsjson.Write(context.Background(), conn, map[string]any{"type": "pong"})
			case "next":
				w.mu.Lock()
				w.updates = append(w.updates, m.Payload.Data.OnUpdateLiveClass)
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(w.close)
	return w
}

// saw reports whether an update matched.
func (w *classWatch) saw(pred func(client.LiveClass) bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, u := range w.updates {
		if pred(u) {
			return true
		}
	}
	return false
}

func (w *classWatch) close() {
	_ = w.conn.Close(websocket.StatusNormalClosure, "")
	<-w.done
}

// classState reads what GraphQL says of a class and of one student's
// enrollment in it.
type classState struct {
	Status              string `json:"status"`
	CurrentParticipants int    `json:"currentParticipants"`
	Enrollments         struct {
		Items []struct {
			UserID             string `json:"userId"`
			Attended           *bool  `json:"attended"`
			AttendanceDuration *int   `json:"attendanceDuration"`
		} `json:"items"`
	} `json:"enrollments"`
}

func getClass(t *testing.T, c *client.Client, id string) classState {
	t.Helper()
	var out struct {
		GetLiveClass classState `json:"getLiveClass"`
	}
	err := c.GraphQL(context.Background(), `query($id: ID!) { getLiveClass(id: $id) {
		status currentParticipants enrollments { items { userId attended attendanceDuration } } } }`, map[string]any{"id": id}, &out)
	if err != nil {
		t.Fatalf("getLiveClass: %v", err)
	}
	return out.GetLiveClass
}

// addMentor creates a mentor with the command line, as an admin would.
func addMentor(t *testing.T, dir, dbURL, email, password string) {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runMain(t, nil, "user", "add", "--data-dir", dir, "--database-url", dbURL,
		"--email", email, "--name", "Maya Mentor", "--role", "MENTOR", "--password-file", pw)
	if code != 0 {
		t.Fatalf("user add: exit %d\n%s%s", code, out, errOut)
	}
}

// TestServeLiveClass runs the real server with its media plane: a mentor
// and a student take join tokens through GraphQL and join over /rtc with
// Pion; the mentor's video and audio reach the student; GraphQL and the
// onUpdateLiveClass subscription follow the class to LIVE with two
// participants and, when the mentor ends it, to ENDED with the student's
// attendance written; shutdown leaves no goroutine behind.
func TestServeLiveClass(t *testing.T) {
	ctx := context.Background()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	flags := mediaFlags()
	flags["log_level"] = "info" // for the start-up line
	cfg := testConfig(t, dir, "", flags)
	srv := start(t, cfg)
	// The RTC ports are in the start-up log line.
	waitUntil(t, "start-up log names the RTC ports", 5*time.Second, func() bool {
		return strings.Contains(srv.stderr.String(), "rtc_udp=") && strings.Contains(srv.stderr.String(), "turn=off")
	})
	if strings.Contains(srv.stderr.String(), "rtc_tcp= ") {
		t.Fatalf("no ICE-TCP port in the start-up line:\n%s", srv.stderr)
	}

	addMentor(t, dir, cfg.DatabaseURL, "mentor@example.org", "mentor-password")
	mentor := client.New(srv.url)
	if _, err := mentor.Login(ctx, "mentor@example.org", "mentor-password"); err != nil {
		t.Fatal(err)
	}
	begin := time.Now().Truncate(time.Minute)
	class, err := mentor.CreateLiveClass(ctx, client.CreateLiveClassInput{
		Title: "Live wiring", StartTime: begin, EndTime: begin.Add(time.Hour), AWSService: "CHIME",
		RequiresEnrollment: true, AccessLevel: "STUDENT", MaxParticipants: 10,
		Category: "Testing", Level: "BEGINNER", IsFree: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	student := client.New(srv.url)
	st, err := student.Signup(ctx, "student@example.org", "student-password", "Sam Student")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := student.Enroll(ctx, class.ID); err != nil {
		t.Fatal(err)
	}
	hostGrant, err := mentor.GenerateLiveClassToken(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	studentGrant, err := student.GenerateLiveClassToken(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	if hostGrant.Role != "HOST" || studentGrant.Role != "ATTENDEE" {
		t.Fatalf("roles %s and %s", hostGrant.Role, studentGrant.Role)
	}
	watch := watchClass(t, srv.url, student.Token(), class.ID)

	host := joinRTC(t, "mentor", srv.url, hostGrant.Token)
	attendee := joinRTC(t, "student", srv.url, studentGrant.Token)
	host.publish()

	// The student learns of the mentor's camera, asks for it, and both
	// its video and the mentor's audio arrive.
	var camera string
	attendee.wait("the mentor's camera listed", func(m rtc.Message) bool {
		var tr rtc.Tracks
		if m.Type != rtc.TypeTracks || m.Decode(&tr) != nil {
			return false
		}
		for _, x := range tr.Tracks {
			if x.Source == rtc.SourceCamera {
				camera = x.ID
				return true
			}
		}
		return false
	})
	if err := attendee.Subscribe(ctx, []rtc.Video{{Track: camera, Width: 320, Height: 180}}); err != nil {
		t.Fatalf("subscribe refused: %v", err)
	}
	waitUntil(t, "the student receives the mentor's video and audio", 20*time.Second, func() bool {
		recv := attendee.Stats()
		return recv.VideoPackets > 10 && recv.AudioPackets > 10
	})
	recv := attendee.Stats()
	t.Logf("student received %d video and %d audio packets", recv.VideoPackets, recv.AudioPackets)

	live := func(c classState) bool { return c.Status == "LIVE" && c.CurrentParticipants == 2 }
	waitUntil(t, "GraphQL shows the class LIVE with two participants", 10*time.Second, func() bool { return live(getClass(t, mentor, class.ID)) })
	waitUntil(t, "onUpdateLiveClass delivers LIVE with two participants", 10*time.Second, func() bool {
		return watch.saw(func(c client.LiveClass) bool {
			return c.ID == class.ID && c.Status == "LIVE" && c.CurrentParticipants == 2
		})
	})

	// end is answered by what it does (docs/protocol.md): "ended" to
	// everyone, then close 4010.
	if _, err := host.Send(ctx, "end", nil); err != nil {
		t.Fatalf("end: %v", err)
	}
	for _, p := range []*rtcPeer{host, attendee} {
		p.wait("the class ended", rtc.OfType("ended"))
	}
	var final classState
	waitUntil(t, "GraphQL shows the class ENDED with nobody in it", 10*time.Second, func() bool {
		final = getClass(t, mentor, class.ID)
		return final.Status == "ENDED" && final.CurrentParticipants == 0
	})
	waitUntil(t, "onUpdateLiveClass delivers ENDED", 10*time.Second, func() bool {
		return watch.saw(func(c client.LiveClass) bool { return c.Status == "ENDED" })
	})
	attended := false
	for _, e := range final.Enrollments.Items {
		if e.UserID == string(st.User.ID) {
			attended = e.Attended != nil && *e.Attended && e.AttendanceDuration != nil
		}
	}
	if !attended {
		t.Fatalf("the student's enrollment after the class: %+v, want attended with a duration", final.Enrollments.Items)
	}

	host.Close()
	attendee.Close()
	watch.close()
	if err := srv.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	waitGoroutines(t, before)
}

// TestServeClosesSocketsOnShutdown stops a server with two people in a
// class: their sockets close with 1001 (going away), they leave the room,
// and their stays are written before the database closes.
func TestServeClosesSocketsOnShutdown(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(t, dir, "", mediaFlags())
	srv := start(t, cfg)
	addMentor(t, dir, cfg.DatabaseURL, "mentor@example.org", "mentor-password")
	mentor := client.New(srv.url)
	if _, err := mentor.Login(ctx, "mentor@example.org", "mentor-password"); err != nil {
		t.Fatal(err)
	}
	begin := time.Now().Truncate(time.Minute)
	class, err := mentor.CreateLiveClass(ctx, client.CreateLiveClassInput{
		Title: "Shutdown", StartTime: begin, EndTime: begin.Add(time.Hour), AWSService: "CHIME",
		AccessLevel: "STUDENT", MaxParticipants: 10, Category: "Testing", Level: "BEGINNER", IsFree: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	grant, err := mentor.GenerateLiveClassToken(ctx, class.ID)
	if err != nil {
		t.Fatal(err)
	}
	host := joinRTC(t, "mentor", srv.url, grant.Token)
	waitUntil(t, "the class is LIVE", 10*time.Second, func() bool { return getClass(t, mentor, class.ID).Status == "LIVE" })

	if err := srv.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case <-host.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the socket is still open after shutdown")
	}
	if closeErr := host.Err(); rtc.CloseCode(closeErr) != int(websocket.StatusGoingAway) {
		t.Fatalf("socket ended with %v, want 1001 going away", closeErr)
	}
	// The stay was closed before the store: the database says so.
	st, err := engine.Open(ctx, cfg.DatabaseURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.ClassByID(ctx, store.ClassID(class.ID))
	if err != nil {
		t.Fatal(err)
	}
	stays, err := st.AttendanceOf(ctx, c.ID, c.InstructorID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stays) != 1 || stays[0].LeftAt == nil || c.CurrentParticipants != 0 {
		t.Fatalf("after shutdown: stays %+v, %d participants; want one closed stay and 0", stays, c.CurrentParticipants)
	}
}

// TestServeSweepsClassesLeftLive starts a server on a database where a
// previous process left two interactive classes LIVE with people counted
// in them (it was killed): the one past its end time plus grace is ENDED
// at start, the other stays LIVE with nobody counted, and a host who joins
// resumes it.
func TestServeSweepsClassesLeftLive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(t, dir, "", mediaFlags())
	st, err := engine.Open(ctx, cfg.DatabaseURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mentor := store.User{Name: "Maya Mentor", Email: "mentor@example.org", Role: store.RoleMentor}
	if err := st.CreateUser(ctx, &mentor); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	mk := func(title string, start, end time.Time) store.LiveClass {
		c := store.LiveClass{
			Title: title, InstructorID: mentor.ID, StartTime: start, EndTime: end, Duration: int(end.Sub(start) / time.Minute),
			Service: store.ServiceChime, AccessLevel: store.RoleStudent, MaxParticipants: 10,
			Category: "test", Level: store.LevelBeginner, IsFree: true, Status: store.StatusLive,
		}
		if err := st.CreateClass(ctx, &c); err != nil {
			t.Fatal(err)
		}
		if err := st.SetCurrentParticipants(ctx, c.ID, 3); err != nil {
			t.Fatal(err)
		}
		return c
	}
	over := mk("Over", now.Add(-3*time.Hour), now.Add(-2*time.Hour))
	going := mk("Going", now.Add(-30*time.Minute), now.Add(30*time.Minute))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	srv := start(t, cfg)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("mentor-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runMain(t, nil, "user", "reset-password", "--data-dir", dir, "--database-url", cfg.DatabaseURL,
		"--email", mentor.Email, "--password-file", pw); code != 0 {
		t.Fatalf("reset-password: exit %d\n%s%s", code, out, errOut)
	}
	c := client.New(srv.url)
	if _, err := c.Login(ctx, mentor.Email, "mentor-password"); err != nil {
		t.Fatal(err)
	}
	if s := getClass(t, c, string(over.ID)); s.Status != "ENDED" || s.CurrentParticipants != 0 {
		t.Errorf("class past its end: %s with %d participants, want ENDED with 0", s.Status, s.CurrentParticipants)
	}
	if s := getClass(t, c, string(going.ID)); s.Status != "LIVE" || s.CurrentParticipants != 0 {
		t.Errorf("class still running: %s with %d participants, want LIVE with 0", s.Status, s.CurrentParticipants)
	}
	grant, err := c.GenerateLiveClassToken(ctx, string(going.ID))
	if err != nil {
		t.Fatal(err)
	}
	host := joinRTC(t, "mentor", srv.url, grant.Token)
	waitUntil(t, "the resumed class counts its host", 10*time.Second, func() bool {
		s := getClass(t, c, string(going.ID))
		return s.Status == "LIVE" && s.CurrentParticipants == 1
	})
	host.Close()
	if _, err := c.GenerateLiveClassToken(ctx, string(over.ID)); client.CodeOf(err) == "" {
		t.Errorf("a token for the ended class: %v, want a refusal", err)
	}
}

// TestSignalPathIsMounted keeps the page's WebSocket path and the route
// the server mounts the same.
func TestSignalPathIsMounted(t *testing.T) {
	if web.SignalPath != server.RTCPath {
		t.Fatalf("the live page connects to %s, the server mounts %s", web.SignalPath, server.RTCPath)
	}
}

// TestServeDemoClassInChromium opens the demo class that starts in ten
// minutes in a real Chromium against the real server (`serve --demo` on
// free media ports): the mentor's page loads, joins over /rtc with a fake
// camera and microphone, and the class goes LIVE with one participant.
func TestServeDemoClassInChromium(t *testing.T) {
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		t.Fatal("chromium not found: run `make test`, which installs it")
	}
	ctx := context.Background()
	flags := mediaFlags()
	flags["demo"] = "true"
	srv := start(t, testConfig(t, t.TempDir(), "", flags))
	out := srv.stdout.String()
	i := strings.Index(out, "have the password ")
	if i < 0 {
		t.Fatalf("no demo password in:\n%s", out)
	}
	mentor := client.New(srv.url)
	if _, err := mentor.Login(ctx, demoMentorEmail, strings.Fields(out[i+len("have the password "):])[0]); err != nil {
		t.Fatal(err)
	}
	page, err := mentor.ListLiveClasses(ctx, map[string]any{"title": map[string]any{"beginsWith": "[Demo] Go for beginners"}}, 10, "")
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("the demo class starting in 10 minutes: %+v %v", page, err)
	}
	class := page.Items[0]

	dir := t.TempDir()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Env("TMPDIR="+dir),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	bctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	eval := func(expr string) any {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[any](expr, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	// The session cookie the sign-in form would set, set by hand.
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.url+"/healthz")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	eval(fmt.Sprintf(`document.cookie = "liveclass_session=%s; path=/"; true`, mentor.Token()))
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.url+"/classes/"+class.ID+"/live")); err != nil {
		t.Fatal(err)
	}
	text := func() string { s, _ := eval(`document.body ? document.body.innerText : ""`).(string); return s }
	waitUntil(t, "the live page's device check", 20*time.Second, func() bool { return strings.Contains(text(), "Before you join") })
	eval(`document.getElementById("join-button").click(); true`)
	waitUntil(t, "the page joins the classroom", 30*time.Second, func() bool { return strings.Contains(text(), "You are in the classroom.") })
	waitUntil(t, "the class is LIVE with the mentor in it", 10*time.Second, func() bool {
		s := getClass(t, mentor, class.ID)
		return s.Status == "LIVE" && s.CurrentParticipants == 1
	})
}
