package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"

	"github.com/liveclass/liveclass/client"
	"github.com/liveclass/liveclass/client/rtc"
	"github.com/liveclass/liveclass/internal/config"
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
// resumes it. Two broadcasts left the same way go the same ways: their
// audience counts back to 0, the one past its end ENDED.
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
	mk := func(title string, start, end time.Time, service ...store.Service) store.LiveClass {
		c := store.LiveClass{
			Title: title, InstructorID: mentor.ID, StartTime: start, EndTime: end, Duration: int(end.Sub(start) / time.Minute),
			Service: store.ServiceChime, AccessLevel: store.RoleStudent, MaxParticipants: 10,
			Category: "test", Level: store.LevelBeginner, IsFree: true, Status: store.StatusLive,
		}
		if len(service) > 0 {
			c.Service = service[0]
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
	castOver := mk("Broadcast over", now.Add(-3*time.Hour), now.Add(-2*time.Hour), store.ServiceIVS)
	castGoing := mk("Broadcast going", now.Add(-30*time.Minute), now.Add(30*time.Minute), store.ServiceIVS)
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
	// A broadcast's end is queued on its channel: asked for at start,
	// done a moment later.
	waitUntil(t, "the broadcast past its end ENDED", 10*time.Second, func() bool {
		s := getClass(t, c, string(castOver.ID))
		return s.Status == "ENDED" && s.CurrentParticipants == 0
	})
	if s := getClass(t, c, string(castGoing.ID)); s.Status != "LIVE" || s.CurrentParticipants != 0 {
		t.Errorf("broadcast still running: %s with %d participants, want LIVE with 0", s.Status, s.CurrentParticipants)
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

// The broadcast (IVS) class end to end: an encoder publishing real H.264
// and Opus over WHIP with a stream key, WHEP viewers, the audience
// WebSocket, HLS checked with ffprobe, GraphQL following the lifecycle.

// h264Clip encodes a short real H.264 stream as OBS would send it
// (baseline, a keyframe every second, no B-frames) into an Annex-B file.
func h264Clip(t *testing.T) string {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg not found: run `make test`, which installs it (%v)", err)
	}
	out := filepath.Join(t.TempDir(), "clip.h264")
	cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
		"-t", "3", "-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast", "-tune", "zerolatency",
		"-g", "30", "-bf", "0", "-pix_fmt", "yuv420p", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("encode the test clip: %v\n%s", err, b)
	}
	return out
}

// whipClient is an encoder stand-in: Pion sending the clip's access units
// at 30 frames a second, looping, and Opus silence, after one WHIP
// offer/answer over HTTP.
type whipClient struct {
	t        *testing.T
	pc       *webrtc.PeerConnection
	location string
	done     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

// broadcastAPI is the Pion API of the test's encoders and viewers.
func broadcastAPI(t *testing.T) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
}

// sdpExchange posts an offer made by pc (all candidates gathered) and
// returns the answer's response.
func sdpExchange(t *testing.T, pc *webrtc.PeerConnection, url, bearer string) (*http.Response, string) {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusCreated {
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(b)}); err != nil {
			t.Fatal(err)
		}
	}
	return resp, string(b)
}

// publishClip publishes the clip to a class over WHIP with bearer.
func publishClip(t *testing.T, api *webrtc.API, baseURL, class, bearer, clip string) *whipClient {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	w := &whipClient{t: t, pc: pc, done: make(chan struct{})}
	t.Cleanup(w.close)
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "video", "obs")
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "obs")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		s, err := pc.AddTrack(tr)
		if err != nil {
			t.Fatal(err)
		}
		w.wg.Go(func() {
			for {
				if _, _, err := s.ReadRTCP(); err != nil {
					return
				}
			}
		})
	}
	resp, body := sdpExchange(t, pc, baseURL+server.WHIPPath+class, bearer)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP publish: %d %s", resp.StatusCode, body)
	}
	w.location = resp.Header.Get("Location")
	frames := clipFrames(t, clip)
	w.wg.Go(func() {
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
			if err := video.WriteSample(media.Sample{Data: frames[n%len(frames)], Duration: time.Second / 30}); err != nil {
				return
			}
		}
	})
	w.wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
			// An Opus frame of 20 ms of silence.
			if err := audio.WriteSample(media.Sample{Data: []byte{0xf8, 0xff, 0xfe}, Duration: 20 * time.Millisecond}); err != nil {
				return
			}
		}
	})
	return w
}

// clipFrames splits an Annex-B file into access units (the NAL units up
// to and including each slice), each written as one sample.
func clipFrames(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	var cur []byte
	for {
		nal, err := r.NextNAL()
		if err != nil {
			break
		}
		cur = append(cur, 0, 0, 0, 1)
		cur = append(cur, nal.Data...)
		if nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr {
			frames = append(frames, cur)
			cur = nil
		}
	}
	if len(frames) < 30 {
		t.Fatalf("the clip has %d frames", len(frames))
	}
	return frames
}

// close drops the connection without a DELETE, as a crashed encoder does.
func (w *whipClient) close() {
	w.once.Do(func() {
		close(w.done)
		_ = w.pc.Close()
		w.wg.Wait()
	})
}

// whepClient is a WHEP viewer counting what it receives.
type whepClient struct {
	pc                   *webrtc.PeerConnection
	videoPkts, audioPkts atomic.Int64
}

// viewWHEP asks for the class's stream; on 201 the viewer is connected,
// otherwise the answer's status and body are returned.
func viewWHEP(t *testing.T, api *webrtc.API, baseURL, class, token string) (*whepClient, *http.Response, string) {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	v := &whepClient{pc: pc}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		n := &v.audioPkts
		if remote.Kind() == webrtc.RTPCodecTypeVideo {
			n = &v.videoPkts
		}
		buf := make([]byte, 1500)
		for {
			if _, _, err := remote.Read(buf); err != nil {
				return
			}
			n.Add(1)
		}
	})
	resp, body := sdpExchange(t, pc, baseURL+server.WHEPPath+class, token)
	return v, resp, body
}

// audienceClient is a viewer's or host's audience WebSocket, keeping the
// stream states it is told.
type audienceClient struct {
	conn   *websocket.Conn
	mu     sync.Mutex
	states []string
	types  []string
	err    error // why reading ended
	done   chan struct{}
}

func joinAudience(t *testing.T, baseURL, class, token string) *audienceClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+server.AudiencePath, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", server.AudiencePath, err)
	}
	a := &audienceClient{conn: conn, done: make(chan struct{})}
	if err := wsjson.Write(ctx, conn, map[string]any{"type": "hello", "v": 1, "token": token, "class": class}); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(a.done)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				a.mu.Lock()
				a.err = err
				a.mu.Unlock()
				return
			}
			// A frame may carry several messages, one per line.
			for line := range strings.Lines(string(data)) {
				var m struct {
					Type   string `json:"type"`
					State  string `json:"state"`
					Stream struct {
						State string `json:"state"`
					} `json:"stream"`
				}
				if json.Unmarshal([]byte(line), &m) != nil {
					continue
				}
				a.mu.Lock()
				a.types = append(a.types, m.Type)
				switch m.Type {
				case "welcome":
					a.states = append(a.states, m.Stream.State)
				case "stream":
					a.states = append(a.states, m.State)
				}
				a.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close(websocket.StatusNormalClosure, "")
		<-a.done
	})
	return a
}

// state is the last stream state told.
func (a *audienceClient) state() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.states) == 0 {
		return ""
	}
	return a.states[len(a.states)-1]
}

func (a *audienceClient) saw(typ string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.types, typ)
}

// broadcastFixture is a served broadcast class: its mentor (signed in), a
// student enrolled in it (signed in), a stream key made through GraphQL,
// and both people's join tokens.
type broadcastFixture struct {
	cfg                     config.Config
	srv                     running
	mentor, student         *client.Client
	class                   client.LiveClass
	key                     string
	studentID               store.UserID
	hostGrant, studentGrant client.JoinToken
}

func newBroadcastFixture(t *testing.T, flags map[string]string) broadcastFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	fx := broadcastFixture{cfg: testConfig(t, dir, "", flags)}
	fx.srv = start(t, fx.cfg)
	t.Cleanup(func() { _ = fx.srv.stop() })
	addMentor(t, dir, fx.cfg.DatabaseURL, "mentor@example.org", "mentor-password")
	fx.mentor = client.New(fx.srv.url)
	if _, err := fx.mentor.Login(ctx, "mentor@example.org", "mentor-password"); err != nil {
		t.Fatal(err)
	}
	begin := time.Now().Truncate(time.Minute)
	var err error
	fx.class, err = fx.mentor.CreateLiveClass(ctx, client.CreateLiveClassInput{
		Title: "Broadcast wiring", StartTime: begin, EndTime: begin.Add(time.Hour), AWSService: "IVS",
		RequiresEnrollment: true, AccessLevel: "STUDENT", MaxParticipants: 1000,
		Category: "Testing", Level: "BEGINNER", IsFree: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		CreateStreamKey struct {
			Key       string `json:"key"`
			IngestURL string `json:"ingestUrl"`
		} `json:"createStreamKey"`
	}
	if err := fx.mentor.GraphQL(ctx, `mutation($c: ID!) { createStreamKey(liveClassId: $c) { key ingestUrl } }`,
		map[string]any{"c": fx.class.ID}, &created); err != nil {
		t.Fatalf("createStreamKey: %v", err)
	}
	fx.key = created.CreateStreamKey.Key
	if created.CreateStreamKey.IngestURL != fx.srv.url+server.WHIPPath+fx.class.ID || fx.key == "" {
		t.Fatalf("createStreamKey answered %+v", created.CreateStreamKey)
	}
	fx.student = client.New(fx.srv.url)
	signed, err := fx.student.Signup(ctx, "student@example.org", "student-password", "Sam Student")
	if err != nil {
		t.Fatal(err)
	}
	fx.studentID = store.UserID(signed.User.ID)
	if _, err := fx.student.Enroll(ctx, fx.class.ID); err != nil {
		t.Fatal(err)
	}
	if fx.hostGrant, err = fx.mentor.GenerateLiveClassToken(ctx, fx.class.ID); err != nil {
		t.Fatal(err)
	}
	if fx.studentGrant, err = fx.student.GenerateLiveClassToken(ctx, fx.class.ID); err != nil {
		t.Fatal(err)
	}
	return fx
}

// TestServeBroadcast runs the real server with a broadcast class: the
// mentor creates a stream key through GraphQL; an encoder publishes real
// H.264 and Opus over WHIP with it; the class goes LIVE (GraphQL and
// onUpdateLiveClass) and the audience is told "live"; a WHEP viewer
// receives video and audio; the next viewer is FULL and gets the signed
// HLS URL, whose stream ffprobe reads as H.264 and AAC; a second publish
// is refused while the first is connected; the encoder drops and the
// audience hears "reconnecting", and "live" again when it publishes anew;
// the host ends the class from the audience socket, and the class is
// ENDED.
func TestServeBroadcast(t *testing.T) {
	ctx := context.Background()
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatalf("ffprobe not found: run `make test`, which installs it (%v)", err)
	}
	clip := h264Clip(t)
	flags := mediaFlags()
	flags["broadcast_max_webrtc_viewers"] = "1"
	fx := newBroadcastFixture(t, flags)
	srv, mentor, student, class, key := fx.srv, fx.mentor, fx.student, fx.class, fx.key
	hostGrant, studentGrant := fx.hostGrant, fx.studentGrant
	api := broadcastAPI(t)
	watch := watchClass(t, srv.url, student.Token(), class.ID)
	viewer := joinAudience(t, srv.url, class.ID, studentGrant.Token)
	host := joinAudience(t, srv.url, class.ID, hostGrant.Token)
	waitUntil(t, "the audience welcomed, offline", 10*time.Second, func() bool { return viewer.state() == "offline" })
	waitUntil(t, "onUpdateLiveClass counts the audience", 10*time.Second, func() bool {
		return watch.saw(func(c client.LiveClass) bool { return c.ID == class.ID && c.CurrentParticipants == 2 })
	})

	// The encoder goes live with the stream key.
	enc := publishClip(t, api, srv.url, class.ID, key, clip)
	waitUntil(t, "onUpdateLiveClass delivers LIVE", 20*time.Second, func() bool {
		return watch.saw(func(c client.LiveClass) bool { return c.ID == class.ID && c.Status == "LIVE" })
	})
	waitUntil(t, "the audience told live", 10*time.Second, func() bool { return viewer.state() == "live" })
	waitUntil(t, "the host gets the stream's health", 10*time.Second, func() bool { return host.saw("health") })

	// One WebRTC viewer fits; the next is sent to HLS.
	v, resp, body := viewWHEP(t, api, srv.url, class.ID, studentGrant.Token)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP: %d %s", resp.StatusCode, body)
	}
	waitUntil(t, "the WHEP viewer receives video and audio", 20*time.Second, func() bool {
		return v.videoPkts.Load() > 30 && v.audioPkts.Load() > 30
	})
	_, resp, body = viewWHEP(t, api, srv.url, class.ID, hostGrant.Token)
	var full struct {
		Error struct{ Code string }
		HLS   string
	}
	if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &full) != nil || full.Error.Code != "FULL" || full.HLS == "" {
		t.Fatalf("second WHEP viewer: %d %s, want 503 FULL with the HLS URL", resp.StatusCode, body)
	}
	playlist := srv.url + full.HLS
	waitUntil(t, "the HLS playlist lists segments", 30*time.Second, func() bool {
		r, err := http.Get(playlist)
		if err != nil {
			return false
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode == http.StatusOK && strings.Count(string(b), "#EXTINF") >= 2
	})
	probe, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", playlist).CombinedOutput()
	if err != nil || !strings.Contains(string(probe), "h264") || !strings.Contains(string(probe), "aac") {
		t.Fatalf("ffprobe of the HLS stream: %v\n%s", err, probe)
	}

	// One publisher per channel: the same key is refused while connected.
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	if resp, body := sdpExchange(t, pc, srv.url+server.WHIPPath+class.ID, key); resp.StatusCode != http.StatusConflict {
		t.Fatalf("second publish while the first is connected: %d %s, want 409", resp.StatusCode, body)
	}

	// The encoder drops: "reconnecting"; it comes back: "live".
	enc.close()
	waitUntil(t, "the audience told reconnecting", 20*time.Second, func() bool { return viewer.state() == "reconnecting" })
	publishClip(t, api, srv.url, class.ID, key, clip)
	waitUntil(t, "the audience told live again", 20*time.Second, func() bool { return viewer.state() == "live" })
	if got := getClass(t, mentor, class.ID); got.Status != "LIVE" {
		t.Fatalf("class after the encoder's return: %s", got.Status)
	}

	// The host ends the class from the audience socket.
	if err := wsjson.Write(ctx, host.conn, map[string]any{"type": "end", "id": 1}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "onUpdateLiveClass delivers ENDED", 20*time.Second, func() bool {
		return watch.saw(func(c client.LiveClass) bool { return c.Status == "ENDED" })
	})
	waitUntil(t, "the audience told ended", 10*time.Second, func() bool { return viewer.saw("ended") || viewer.state() == "ended" })
	if err := srv.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestServeBroadcastShutdown stops a server while a broadcast is on air:
// the publisher, a WHEP viewer and the audience are connected. Shutdown
// is clean, the audience sockets close with 1001 and the viewer's stay is
// written, the class stays LIVE (the encoder may reconnect to the next
// process), and no goroutine is left behind.
func TestServeBroadcastShutdown(t *testing.T) {
	ctx := context.Background()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	before := runtime.NumGoroutine()
	clip := h264Clip(t)
	fx := newBroadcastFixture(t, mediaFlags())
	api := broadcastAPI(t)
	viewer := joinAudience(t, fx.srv.url, fx.class.ID, fx.studentGrant.Token)
	enc := publishClip(t, api, fx.srv.url, fx.class.ID, fx.key, clip)
	v, resp, body := viewWHEP(t, api, fx.srv.url, fx.class.ID, fx.studentGrant.Token)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHEP: %d %s", resp.StatusCode, body)
	}
	waitUntil(t, "the viewer receives video", 20*time.Second, func() bool { return v.videoPkts.Load() > 30 })
	waitUntil(t, "the audience told live", 10*time.Second, func() bool { return viewer.state() == "live" })

	if err := fx.srv.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case <-viewer.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the audience socket is still open after shutdown")
	}
	viewer.mu.Lock()
	code := websocket.CloseStatus(viewer.err)
	viewer.mu.Unlock()
	if code != websocket.StatusGoingAway {
		t.Fatalf("audience socket ended with %v, want 1001 going away", viewer.err)
	}
	st, err := engine.Open(ctx, fx.cfg.DatabaseURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var closeOnce sync.Once
	closeStore := func() (err error) { closeOnce.Do(func() { err = st.Close() }); return err }
	t.Cleanup(func() { _ = closeStore() })
	c, err := st.ClassByID(ctx, store.ClassID(fx.class.ID))
	if err != nil {
		t.Fatal(err)
	}
	stays, err := st.AttendanceOf(ctx, c.ID, fx.studentID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != store.StatusLive || len(stays) != 1 || stays[0].LeftAt == nil {
		t.Fatalf("after shutdown: class %s, the viewer's stays %+v; want LIVE and one closed stay", c.Status, stays)
	}
	if err := closeStore(); err != nil {
		t.Fatal(err)
	}

	enc.close()
	_ = v.pc.Close()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	waitGoroutines(t, before)
}
