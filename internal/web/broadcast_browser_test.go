package web_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/liveclass/liveclass/internal/audience"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/broadcast"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/events"
	"github.com/liveclass/liveclass/internal/hls"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
	"github.com/liveclass/liveclass/internal/web"
)

// newBroadcastEnv is newEnv with the broadcast stack, wired as `serve`
// wires it: the sfu on loopback, the broadcast service (WHIP, WHEP, the
// lifecycle, HLS packaging with ffmpeg), the audience hub, and the HLS
// handler, over the same SQLite file. WHIP, WHEP, HLS and the audience
// socket are mounted in front of the cookie sign-in, as the server
// mounts them: each checks its own credential. maxWebRTC is how many
// WHEP viewers a channel takes before it answers 503 FULL.
func newBroadcastEnv(t *testing.T, maxWebRTC int) *env {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal("ffmpeg not found: run `make test`, which installs it")
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "liveclass.db"), log)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clk := &clock{}
	key := []byte("0123456789abcdef0123456789abcdef")
	as := auth.New(st, auth.Options{
		Now: clk.Now, SignupEnabled: true, Logger: log, Key: key,
		HashParams: auth.HashParams{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	})
	signer, err := jointoken.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	cs := classes.New(st, events.New(), signer, classes.Options{Now: clk.Now})
	hlsRoot := filepath.Join(t.TempDir(), "hls")
	// ffmpeg's own words, shown only when the test fails.
	var ffmpegLog syncLog
	var packagers packagerList
	hlsLog := slog.New(slog.NewTextHandler(&ffmpegLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("HLS packager log:\n%s", ffmpegLog.tail(8000))
			t.Logf("HLS packagers: %s", packagers.stats())
		}
	})
	hlsSigner := hls.NewSigner([]byte("hls-" + string(key)))

	var bc *broadcast.Service
	hub, err := audience.NewHub(audience.Options{
		Store: st, Tokens: signer, Logger: log, Now: clk.Now,
		OnEnd: func(ctx context.Context, class store.ClassID) error { return bc.End(ctx, class) },
	})
	if err != nil {
		t.Fatalf("audience.NewHub: %v", err)
	}
	bc, err = broadcast.New(broadcast.Options{
		Store: st, Keys: cs, Tokens: signer, Audience: hub, Logger: log, Now: clk.Now,
		OnClassChange:    func(ctx context.Context, id store.ClassID) { _ = cs.ClassChanged(ctx, id) },
		MaxWebRTCViewers: maxWebRTC,
		HealthInterval:   time.Second,
		StartHLS: func(class store.ClassID, codec string, keyframe func()) (broadcast.Packager, error) {
			p, err := hls.Start(hls.Options{
				Dir: filepath.Join(hlsRoot, string(class)), FFmpeg: ffmpeg, VideoCodec: codec,
				SegmentDuration: time.Second, Logger: hlsLog, RequestKeyframe: keyframe,
			})
			if err == nil {
				packagers.add(p)
			}
			return p, err
		},
		HLSURL: hlsSigner.URL,
	})
	if err != nil {
		t.Fatalf("broadcast.New: %v", err)
	}
	media, err := sfu.New(sfu.Config{IncludeLoopback: true, DisableTCP: true, Logger: log, Events: bc.Events(nil)})
	if err != nil {
		t.Fatalf("sfu.New: %v", err)
	}
	bc.SetMedia(broadcast.SFU(media))
	ui, err := web.New(web.Config{Classes: cs, Auth: as, Logger: log, HLSURL: hlsSigner.URL})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}

	pages := http.NewServeMux()
	pages.Handle("/auth/", as.Handler())
	ui.Mount(pages)
	signedIn := as.Middleware(pages)
	top := http.NewServeMux()
	top.Handle(web.WHIPPath, bc.Handler())
	top.Handle(web.WHEPPath, bc.Handler())
	top.Handle("/hls/", hls.NewHandler(hlsRoot, hlsSigner, clk.Now))
	top.Handle("GET "+web.AudiencePath, hub)
	top.Handle("/", signedIn)
	srv := httptest.NewServer(top)
	// Stopped in the reverse order of building: connections first, then
	// the services under them, the database last.
	t.Cleanup(func() { _ = media.Close() })
	t.Cleanup(bc.Close)
	t.Cleanup(hub.Close)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, st: st, auth: as, classes: cs, clock: clk}
}

// packagerList keeps the HLS packagers a test started, for their counts.
type packagerList struct {
	mu   sync.Mutex
	list []*hls.Packager
}

func (l *packagerList) add(p *hls.Packager) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, p)
}

func (l *packagerList) stats() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.list {
		out = append(out, fmt.Sprintf("%+v", p.Stats()))
	}
	return strings.Join(out, "; ")
}

// syncLog is a log buffer several goroutines write.
type syncLog struct {
	mu sync.Mutex
	b  []byte
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

// tail returns the last n bytes written.
func (l *syncLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b[max(0, len(l.b)-n):])
}

// holds is until for the broadcast pages: body returns true when the
// condition holds, or anything else to say what the page shows instead,
// which a failure reports together with the page's alert.
func holds(t *testing.T, p person, what string, timeout time.Duration, body string) {
	t.Helper()
	pollPage(t, p, what, timeout, "(async () => { "+body+" })().then(v => v === true ? true : JSON.stringify(v), e => String(e))",
		`["bc-alert", "bc-status", "watch-alert", "player-state"].map(id => document.getElementById(id)?.textContent ?? "").filter(Boolean).join(" | ")`)
}

// framesRise waits until the viewer page decodes more and more frames
// over WebRTC.
func framesRise(t *testing.T, p person) {
	t.Helper()
	holds(t, p, "decode frames over WebRTC", 30*time.Second, `const n = await window.liveclass.decoded();
		if (n > 0 && window.__frames !== undefined && n > window.__frames) { delete window.__frames; return true; }
		if (n > 0 && window.__frames === undefined) window.__frames = n;
		return false;`)
}

// signIn signs p in through the form.
func signIn(t *testing.T, e *env, p person, wait time.Duration) {
	t.Helper()
	step(t, p.ctx, p.name+" signs in", wait,
		chromedp.Navigate(e.srv.URL+"/signin"),
		typeInto("Email", p.user.Email),
		chromedp.SendKeys("password", "password123", byRole("", "Password"), chromedp.NodeVisible),
		follow("button", "Sign in"),
	)
}

// broadcastScene is a broadcast class with a presenter and viewers, each
// in their own Chromium, signed in.
type broadcastScene struct {
	e        *env
	class    store.LiveClass
	classURL string
	people   []person
}

// newBroadcastScene starts a server taking maxWebRTC WHEP viewers, a
// broadcast class starting in five minutes, its instructor and one
// enrolled student per viewer name, and signs them in.
func newBroadcastScene(t *testing.T, maxWebRTC int, viewers ...string) *broadcastScene {
	t.Helper()
	e := newBroadcastEnv(t, maxWebRTC)
	ctx := context.Background()
	hostUser := e.user("hana@example.com", "Hana Host", store.RoleMentor)
	c := e.class(hostUser, "Broadcast Chromium class", time.Now().Add(5*time.Minute), ivs)
	people := []person{{name: "presenter", user: hostUser}}
	for i, name := range viewers {
		u := e.user(fmt.Sprintf("viewer%d@example.com", i), name, store.RoleStudent)
		if _, err := e.classes.Enroll(ctx, actor(u), c.ID, ""); err != nil {
			t.Fatal(err)
		}
		people = append(people, person{name: name, user: u})
	}
	bctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel)
	chromium := chromiumPath(t)
	var wg sync.WaitGroup
	errs := make([]error, len(people))
	for i := range people {
		wg.Go(func() { people[i].ctx, errs[i] = newMediaBrowser(bctx, t, chromium) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range people {
		signIn(t, e, p, wait)
	}
	return &broadcastScene{e: e, class: c, classURL: e.srv.URL + "/classes/" + string(c.ID), people: people}
}

// goLive has the presenter create a stream key, copy it, and go live
// from the page.
func (sc *broadcastScene) goLive(t *testing.T) bool {
	e, c, classURL, host, ctx := sc.e, sc.class, sc.classURL, sc.people[0], context.Background()
	return t.Run("presenter goes live from the page", func(t *testing.T) {
		step(t, host.ctx, "presenter opens the presenter page from the class page", wait,
			chromedp.Navigate(classURL),
			follow("link", "Open presenter"),
			waitText("Stream keys", wait),
		)
		step(t, host.ctx, "presenter creates a stream key for OBS and copies it", wait,
			follow("button", "Create stream key"),
			waitText("shown only once", wait),
			click("button", "Copy stream key"),
		)
		// Headless Chromium may refuse the clipboard; the button then
		// selects the key for a manual copy and says so.
		holds(t, host, "the copy button answers", wait, `const b = document.querySelector('[data-copy="new-key"]');
			return b.dataset.copied === "clipboard" || b.dataset.copied === "manual" || b.outerHTML;`)
		step(t, host.ctx, "watch the page for script errors", wait,
			js(`window.__errs = []; addEventListener("error", (e) => __errs.push(e.message)); addEventListener("unhandledrejection", (e) => __errs.push(String(e.reason))); true`))
		until(t, host, "the preview plays", wait, `return document.getElementById("preview").videoHeight > 0;`)
		until(t, host, "cameras and microphones listed", wait,
			`return document.querySelectorAll("#camera-select option").length > 1 && document.querySelectorAll("#mic-select option").length > 1;`)
		step(t, host.ctx, "presenter goes live", wait,
			everyControlNamed(),
			click("button", "Go live"),
			waitText("You are live.", wait),
		)
		until(t, host, "the server says the stream is live", wait, `return document.getElementById("stream-state").textContent === "Live";`)
		until(t, host, "the page's own statistics show what it sends", wait,
			`return /^[1-9][0-9]* kbit\/s$/.test(document.getElementById("health-bitrate").textContent)
				&& document.getElementById("health-source").textContent === "This page";`)
		got, err := e.st.ClassByID(ctx, c.ID)
		if err != nil || got.Status != store.StatusLive {
			t.Fatalf("class status %q (%v), want LIVE once the stream started", got.Status, err)
		}
	})
}

func TestBrowserBroadcast(t *testing.T) {
	begin := time.Now()
	sc := newBroadcastScene(t, 10, "Sid One")
	e, c, classURL, ctx := sc.e, sc.class, sc.classURL, context.Background()
	host, viewer := sc.people[0], sc.people[1]
	if !sc.goLive(t) {
		return
	}
	ok := t.Run("a viewer plays it over WebRTC", func(t *testing.T) {
		step(t, viewer.ctx, "viewer joins from the class page", wait,
			chromedp.Navigate(classURL),
			follow("link", "Join class"),
			waitText("Chat", wait),
		)
		framesRise(t, viewer)
		until(t, viewer, "the player shows no waiting message", wait, `return document.getElementById("player-state").hidden;`)
		until(t, viewer, "the latency indicator reads WebRTC's delay", wait,
			`return /^Latency: [0-9.]+ s \(WebRTC\)$/.test(document.getElementById("latency").textContent);`)
		until(t, host, "the presenter counts the viewer", wait, `return Number(document.getElementById("viewer-count").textContent) >= 1;`)
		step(t, viewer.ctx, "every control on the viewer's page is named", wait, everyControlNamed())
	})
	if !ok {
		return
	}

	t.Run("chat both ways, moderated", func(t *testing.T) {
		step(t, viewer.ctx, "viewer writes", wait, typeInto("Message", "Is <b>this</b> recorded?"), click("button", "Send"))
		until(t, host, "the presenter gets it", wait, chatLogHas("Is <b>this</b> recorded?"))
		until(t, host, "as text, not markup", wait, `return document.querySelector("#chat-log b") === null;`)
		step(t, host.ctx, "presenter answers", wait, typeInto("Message", "Yes, it is."), click("button", "Send"))
		until(t, viewer, "the viewer gets the answer", wait, chatLogHas("Yes, it is."))
		until(t, viewer, "the viewer sees their own message", wait, chatLogHas("Is <b>this</b> recorded?"))
		step(t, host.ctx, "presenter mutes the viewer", wait, click("button", "Mute Sid One"), chromedp.WaitVisible("unmute", byRole("button", "Unmute Sid One")))
		until(t, viewer, "the viewer is told", wait, `return document.getElementById("watch-alert").textContent.includes("muted you");`)
		step(t, viewer.ctx, "the muted viewer tries to write", wait, typeInto("Message", "Hello?"), click("button", "Send"))
		holds(t, viewer, "and is refused", wait, `const e = document.getElementById("chat-error"); return (!e.hidden && e.textContent !== "") || e.textContent;`)
		step(t, host.ctx, "presenter unmutes the viewer", wait, click("button", "Unmute Sid One"), chromedp.WaitVisible("mute", byRole("button", "Mute Sid One")))
		until(t, viewer, "the viewer may write again", wait, `return document.getElementById("watch-alert").hidden;`)
		step(t, host.ctx, "presenter deletes the viewer's message", wait,
			click("button", "Delete message from Sid One: Is <b>this</b> recorded?"))
		until(t, viewer, "the message is gone for the viewer", wait, `return !document.getElementById("chat-log").textContent.includes("recorded");`)
		// A ban is listed on the presenter page until lifted there; the
		// viewer then gets back in.
		step(t, viewer.ctx, "viewer writes again", wait, typeInto("Message", "Spam spam spam"), click("button", "Send"))
		until(t, host, "the presenter gets it", wait, chatLogHas("Spam spam spam"))
		step(t, host.ctx, "presenter bans the viewer", wait, click("button", "Ban Sid One"), chromedp.WaitVisible("unban", byRole("button", "Unban Sid One")))
		until(t, viewer, "the viewer is removed", wait, `return document.getElementById("watch-alert").textContent.includes("removed you");`)
		step(t, host.ctx, "presenter lifts the ban from the list", wait, click("button", "Unban Sid One"))
		until(t, host, "the list is empty", wait, `return !document.getElementById("bans-empty").hidden && document.querySelector("#ban-list li") === null;`)
		step(t, viewer.ctx, "the viewer comes back", wait, chromedp.Reload(), waitText("Chat", wait))
		until(t, viewer, "and is let in", wait, `return window.liveclass.state.you !== "" && document.getElementById("watch-alert").hidden;`)
		step(t, host.ctx, "presenter sets slow mode", wait,
			chromedp.SetValue("slow mode", "10", byRole("combobox", "Slow mode"), chromedp.NodeVisible),
			click("button", "Set slow mode"))
		until(t, viewer, "the viewer is told", wait, `return document.getElementById("chat-slow").textContent.includes("10 seconds");`)
	})

	t.Run("a reaction shows as a count on the presenter", func(t *testing.T) {
		step(t, viewer.ctx, "viewer reacts", wait, click("button", "React with 👏"))
		until(t, host, "the count arrives", wait,
			`const li = document.querySelector('#reaction-counts li[data-emoji="👏"]'); return li && Number(li.textContent.trim().split(" ").pop()) >= 1;`)
	})

	t.Run("a poll is voted on and its results shown", func(t *testing.T) {
		step(t, host.ctx, "presenter starts a poll", wait,
			typeInto("Question", "Which topic next?"),
			chromedp.SendKeys("options", "Channels\nGenerics\nTesting", byRole("textbox", "Options, one per line (2 to 10)"), chromedp.NodeVisible),
			click("button", "Start poll"),
		)
		step(t, viewer.ctx, "viewer votes", wait, click("radio", "Generics"), click("button", "Vote: Which topic next?"), waitText("You voted: Generics", wait))
		holds(t, host, "results are live for the presenter", wait,
			`const r = document.querySelector(".results"); return (r && r.textContent.includes("1 person voted") && r.textContent.includes("Generics: 1")) || [document.getElementById("poll-list").textContent, window.__errs, window.liveclass.seen(), window.liveclass.polls()];`)
		until(t, viewer, "viewers see no results while it is open", wait, `return document.querySelector(".results") === null;`)
		step(t, host.ctx, "presenter closes the poll", wait, click("button", "Close poll: Which topic next?"))
		until(t, viewer, "the viewer sees the results", wait, `return document.querySelector(".results")?.textContent.includes("Generics: 1");`)
	})

	t.Run("the presenter switches to the screen while live", func(t *testing.T) {
		// A key press, as a person choosing with the keyboard: picking a
		// screen needs the page to have been used just now.
		step(t, host.ctx, "presenter picks the screen", wait,
			chromedp.Focus("send", byRole("combobox", "Send"), chromedp.NodeVisible),
			chromedp.KeyEvent(kb.ArrowDown),
		)
		holds(t, host, "the preview shows the screen", wait,
			`const t = window.liveclass.state.local.video; return (t && t.getSettings().displaySurface === "monitor") || (t && t.label);`)
		framesRise(t, viewer)
	})

	t.Run("stop and end", func(t *testing.T) {
		screenshot(t, host, "broadcast-presenter.png")
		screenshot(t, viewer, "broadcast-viewer.png")
		step(t, host.ctx, "presenter stops the stream", wait, click("button", "Stop stream"), chromedp.WaitVisible("go live", byRole("button", "Go live")))
		until(t, viewer, "the viewer is told the stream stopped", wait, `return !document.getElementById("player-state").hidden;`)
		step(t, host.ctx, "presenter ends the class", wait, click("button", "End class"), click("button", "End the class for everyone"))
		until(t, viewer, "the viewer is told the class has ended", wait,
			`return !document.getElementById("ended").hidden && document.getElementById("player-state").textContent === "The class has ended";`)
		got, err := e.st.ClassByID(ctx, c.ID)
		if err != nil || got.Status != store.StatusEnded {
			t.Fatalf("class status %q (%v), want ENDED", got.Status, err)
		}
	})
	t.Logf("broadcast scenario took %v", time.Since(begin).Round(100*time.Millisecond))
}

// TestBrowserBroadcastHLS is a server that takes no WebRTC viewer: the
// viewer page is answered 503 FULL and plays the stream over HLS, which
// ffmpeg transcodes from the presenter page's VP8.
func TestBrowserBroadcastHLS(t *testing.T) {
	begin := time.Now()
	sc := newBroadcastScene(t, 0, "Sue Two")
	hlsViewer := sc.people[1]
	classURL := sc.classURL
	if !sc.goLive(t) {
		return
	}
	t.Run("a viewer beyond WebRTC's capacity plays HLS", func(t *testing.T) {
		step(t, hlsViewer.ctx, "viewer opens the watch page", wait,
			chromedp.Navigate(classURL+"/watch"),
			waitText("Chat", wait),
		)
		until(t, hlsViewer, "the page falls back to HLS", wait, `return window.liveclass.state.mode === "hls";`)
		// ffmpeg transcodes the VP8 stream to H.264 and cuts one-second
		// segments: the first ones take a few seconds on a busy machine.
		holds(t, hlsViewer, "the video plays", 45*time.Second, `const v = document.getElementById("video");
			if (v.currentTime > 0 && window.__t !== undefined && v.currentTime > window.__t + 1) return true;
			if (v.currentTime > 0 && window.__t === undefined) window.__t = v.currentTime;
			const res = await fetch(window.liveclass.state.hlsURL);
			return {layers: window.__layers, time: v.currentTime, ready: v.readyState, errors: window.liveclass.hlsErrors, state: window.liveclass.state, playlist: res.status + " " + await res.text()};`)
		until(t, hlsViewer, "the latency indicator reads HLS's delay", wait,
			`return /^Latency: [0-9.]+ s \(HLS\)$/.test(document.getElementById("latency").textContent);`)
		screenshot(t, hlsViewer, "broadcast-viewer-hls.png")
	})

	t.Run("the end reaches the HLS viewer", func(t *testing.T) {
		step(t, sc.people[0].ctx, "presenter ends the class", wait, click("button", "End class"), click("button", "End the class for everyone"))
		until(t, hlsViewer, "the viewer is told the class has ended", wait,
			`return !document.getElementById("ended").hidden && document.getElementById("player-state").textContent === "The class has ended";`)
	})
	t.Logf("HLS scenario took %v", time.Since(begin).Round(100*time.Millisecond))
}

// wait is how long a step of a browser test may take: generous, because
// the conditions are met within a second or two on a quiet machine, and
// a busy one must not turn slowness into failure.
const wait = 30 * time.Second
