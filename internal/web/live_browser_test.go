package web_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/events"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/signal"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
	"github.com/liveclass/liveclass/internal/web"
)

// newLiveEnv is newEnv with the media plane: a room manager, an sfu on
// loopback, and the signalling handler mounted where the live page looks
// for it, all over the same SQLite file.
func newLiveEnv(t *testing.T) (*env, *wsConns) {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
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
	ui, err := web.New(web.Config{Classes: cs, Auth: as, Logger: log})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	rooms := room.NewManager(room.Options{Store: st, Logger: log})
	media, err := sfu.New(sfu.Config{IncludeLoopback: true, DisableTCP: true, Logger: log, Events: signal.MediaEvents(rooms, log)})
	if err != nil {
		t.Fatalf("sfu.New: %v", err)
	}
	t.Cleanup(func() { _ = media.Close() })
	rooms.SetMedia(signal.RoomMedia(media))
	sig, err := signal.New(signal.Config{Rooms: rooms, SFU: media, Tokens: signer, Classes: st, Logger: log})
	if err != nil {
		t.Fatalf("signal.New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", as.Handler())
	conns := &wsConns{by: map[store.UserID][]net.Conn{}}
	mux.Handle("GET "+web.SignalPath, conns.wrap(sig))
	ui.Mount(mux)
	srv := httptest.NewServer(as.Middleware(mux))
	// The signalling connections close first, while the room, the sfu
	// and the database still stand.
	t.Cleanup(srv.Close)
	t.Cleanup(sig.Close)
	return &env{t: t, srv: srv, st: st, auth: as, classes: cs, clock: clk, media: media}, conns
}

// wsConns keeps the network connections of the signalling WebSockets by
// the signed-in user who opened them, so that a test can cut one as a
// network failure would: without a close handshake.
type wsConns struct {
	mu      sync.Mutex
	by      map[store.UserID][]net.Conn
	blocked map[store.UserID]bool // refused as a network that is down would
}

func (c *wsConns) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := auth.ActorFrom(r.Context()).UserID
		c.mu.Lock()
		blocked := c.blocked[user]
		c.mu.Unlock()
		if blocked {
			http.Error(w, "network down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(hijackRecorder{ResponseWriter: w, record: func(nc net.Conn) {
			c.mu.Lock()
			c.by[user] = append(c.by[user], nc)
			c.mu.Unlock()
		}}, r)
	})
}

// drop cuts every connection the user opened and reports how many.
func (c *wsConns) drop(user store.UserID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.by[user])
	for _, nc := range c.by[user] {
		_ = nc.Close()
	}
	delete(c.by, user)
	return n
}

// block makes the user's new signalling connections fail until
// unblock, as they would while their network is down.
func (c *wsConns) block(user store.UserID, down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.blocked == nil {
		c.blocked = map[store.UserID]bool{}
	}
	c.blocked[user] = down
}

// hijackRecorder hands the connection the WebSocket upgrade takes over to
// record.
type hijackRecorder struct {
	http.ResponseWriter
	record func(net.Conn)
}

func (h hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.record(nc)
	}
	return nc, rw, err
}

// newMediaBrowser is newBrowser for the classroom: a fake camera and
// microphone, a fake screen to share, WebRTC over loopback, and sound
// that may play without a click. A desktop-sized window, so that tiles
// are what a laptop shows. Extra options come last and override these.
func newMediaBrowser(ctx context.Context, t *testing.T, chromium string, extra ...chromedp.ExecAllocatorOption) (context.Context, error) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, err
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("auto-select-desktop-capture-source", "Entire screen"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// Three browsers share two cores: none may be throttled for
		// being in the background.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.WindowSize(1000, 900),
		chromedp.Env("TMPDIR="+tmp, "TZ=UTC"),
	}
	opts = append(opts, extra...)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	return bctx, nil
}

// person is one participant with their own browser.
type person struct {
	name string
	user store.User
	ctx  context.Context
}

// until polls the async JavaScript predicate body (its result must be
// truthy) every 100 ms until it holds or timeout passes; a failure shows
// what the page says in its alert and status lines.
func until(t *testing.T, p person, what string, timeout time.Duration, body string) {
	t.Helper()
	pollPage(t, p, what, timeout, "(async () => { "+body+" })().then(v => !!v, e => String(e))",
		`["live-alert", "live-status", "left-reason"].map(id => document.getElementById(id)?.textContent ?? "").join(" | ")
				+ " | tracks: " + window.liveclass?.tracks().join(", ")`)
}

// pollPage evaluates expr, a promise, every 100 ms until it yields true
// or timeout passes; a failure reports the last value it yielded and
// what the script said evaluates to on the page.
func pollPage(t *testing.T, p person, what string, timeout time.Duration, expr, said string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last any
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr, chromedp.EvalAwaitPromise))
		if err == nil && v == true {
			return
		}
		switch {
		case err == nil:
			last = v
		case ctx.Err() == nil:
			last = err
		}
		select {
		case <-ctx.Done():
			page, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](said))
			t.Fatalf("%s: %s: not within %v (last: %v); the page says: %q", p.name, what, timeout, last, page)
		case <-tick.C:
		}
	}
}

// decodes waits until p's browser decodes more and more frames of track.
func decodes(t *testing.T, p person, track string) {
	t.Helper()
	js := fmt.Sprintf(`const d = await window.liveclass.decoded(); const n = d[%q] ?? 0;
		window.__seen = window.__seen || {}; const k = %q;
		if (n > 0 && window.__seen[k] !== undefined && n > window.__seen[k]) { delete window.__seen[k]; return true; }
		if (n > 0 && window.__seen[k] === undefined) window.__seen[k] = n;
		return false;`, track, track)
	until(t, p, "decode frames of "+track, 30*time.Second, js)
}

// notDecoding checks that track is neither offered to nor mapped for p.
func notReceiving(t *testing.T, p person, track string) {
	t.Helper()
	until(t, p, "stop receiving "+track, 30*time.Second, fmt.Sprintf(
		`return !window.liveclass.tracks().includes(%q) && !Object.values(window.liveclass.mapping).includes(%q);`, track, track))
}

// screenshot saves p's whole page as a PNG into the test's temp dir, and
// into LIVECLASS_SCREENSHOT_DIR when set.
func screenshot(t *testing.T, p person, name string) {
	t.Helper()
	shot, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
	if err != nil || len(shot) == 0 {
		t.Fatalf("screenshot of %s: %v", p.name, err)
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), name), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("LIVECLASS_SCREENSHOT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// js runs expr in the page as a step.
func js(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool](expr)(ctx, tg)
		return chromedp.Void{}, err
	}
}

func chatLogHas(text string) string {
	return fmt.Sprintf(`return document.getElementById("chat-log").textContent.includes(%q);`, text)
}

func TestBrowserLiveClassroom(t *testing.T) {
	begin := time.Now()
	e, conns := newLiveEnv(t)
	ctx := context.Background()
	hostUser := e.user("hana@example.com", "Hana Host", store.RoleMentor)
	one := e.user("sid@example.com", "Sid One", store.RoleStudent)
	two := e.user("sue@example.com", "Sue Two", store.RoleStudent)
	c := e.class(hostUser, "Live Chromium class", time.Now().Add(5*time.Minute), nil)
	for _, s := range []store.User{one, two} {
		if _, err := e.classes.Enroll(ctx, actor(s), c.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	live := e.srv.URL + "/classes/" + string(c.ID) + "/live"

	// Three people, each with their own browser, started side by side.
	bctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel)
	people := []person{{name: "host", user: hostUser}, {name: "student one", user: one}, {name: "student two", user: two}}
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
	host, s1, s2 := people[0], people[1], people[2]
	id := func(p person) string { return string(p.user.ID) }
	// Generous: the conditions are met within a second or two on a quiet
	// machine, and a busy one (other test suites on the same two cores)
	// must not turn slowness into failure.
	const wait = 30 * time.Second

	ok := t.Run("join", func(t *testing.T) {
		for _, p := range people {
			step(t, p.ctx, p.name+" signs in and opens the classroom", wait,
				chromedp.Navigate(e.srv.URL+"/signin"),
				typeInto("Email", p.user.Email),
				chromedp.SendKeys("password", "password123", byRole("", "Password"), chromedp.NodeVisible),
				follow("button", "Sign in"),
				chromedp.Navigate(live),
				waitText("Before you join", wait),
			)
		}
		for _, p := range people {
			// Three browsers encode and decode on two cores: the
			// low-bandwidth setting keeps them responsive.
			step(t, p.ctx, p.name+" picks low-bandwidth video", wait,
				chromedp.SetValue("video quality", "180", byRole("combobox", "Video quality"), chromedp.NodeVisible),
				js(`document.getElementById("quality-select").dispatchEvent(new Event("change")), true`),
			)
			until(t, p, "camera preview plays at the chosen size", wait,
				`const v = document.getElementById("preview"); return v.videoHeight > 0 && v.videoHeight <= 180;`)
		}
		for _, p := range people {
			until(t, p, "camera preview plays", wait, `return document.getElementById("preview").videoWidth > 0;`)
			until(t, p, "cameras and microphones listed", wait,
				`return document.querySelectorAll("#camera-select option").length > 1 && document.querySelectorAll("#mic-select option").length > 1;`)
			until(t, p, "microphone level meter moves", wait, `return document.getElementById("mic-level").value > 0;`)
			if p.name == "host" {
				screenshot(t, p, "live-prejoin.png")
			}
			step(t, p.ctx, p.name+" joins", wait,
				everyControlNamed(),
				click("button", "Join"),
				waitText("You are in the classroom.", wait),
				everyControlNamed(),
			)
		}
	})
	if !ok {
		return
	}

	ok = t.Run("everyone decodes the others' video", func(t *testing.T) {
		for _, p := range people {
			for _, o := range people {
				if o.user.ID != p.user.ID {
					decodes(t, p, id(o)+"/camera")
				}
			}
		}
		// Chromium's packets come the sfu's own receive path: it
		// answered as the DTLS server, with AES-GCM.
		if st := e.media.Stats(); st.ReceivedDirect == 0 || st.Refused != 0 {
			t.Fatalf("published packets: %d on the direct path, %d refused there", st.ReceivedDirect, st.Refused)
		}
	})
	if !ok {
		return
	}

	t.Run("screen share reaches the others", func(t *testing.T) {
		step(t, host.ctx, "host shares the screen", wait, click("button", "Share screen"))
		for _, p := range []person{s1, s2} {
			decodes(t, p, id(host)+"/screen")
			until(t, p, "screen view shows the share", wait,
				`return !document.getElementById("screen-view").hidden && document.getElementById("screen-caption").textContent.includes("Hana Host is sharing");`)
		}
		step(t, host.ctx, "host stops sharing", wait, click("button", "Stop sharing"))
		for _, p := range []person{s1, s2} {
			until(t, p, "screen view closes", wait, `return document.getElementById("screen-view").hidden;`)
		}
	})

	t.Run("chat both ways", func(t *testing.T) {
		for _, p := range people {
			step(t, p.ctx, p.name+" opens the chat", wait, click("button", "Chat"))
		}
		step(t, s1.ctx, "student asks the hosts privately", wait,
			chromedp.SetValue("send to", "hosts", byRole("combobox", "Send to"), chromedp.NodeVisible),
			typeInto("Message", "Is <b>this</b> on the exam?"),
			click("button", "Send"),
		)
		until(t, host, "host gets the private question", wait, chatLogHas("Is <b>this</b> on the exam?"))
		until(t, host, "shown as text, not markup", wait, `return document.querySelector("#chat-log b") === null;`)
		step(t, host.ctx, "host answers the student privately", wait,
			chromedp.SetValue("send to", id(s1), byRole("combobox", "Send to"), chromedp.NodeVisible),
			typeInto("Message", "Yes, chapter three."),
			click("button", "Send"),
		)
		until(t, s1, "student gets the private answer", wait, chatLogHas("Yes, chapter three."))
		step(t, host.ctx, "host writes to everyone", wait,
			chromedp.SetValue("send to", "everyone", byRole("combobox", "Send to"), chromedp.NodeVisible),
			typeInto("Message", "Welcome, everyone!"),
			click("button", "Send"),
		)
		for _, p := range []person{s1, s2} {
			until(t, p, "everyone gets the host's message", wait, chatLogHas("Welcome, everyone!"))
		}
		// The room delivers in order: whatever was private came before.
		until(t, s2, "private messages stay private", wait,
			`const t = document.getElementById("chat-log").textContent; return !t.includes("exam") && !t.includes("chapter three");`)
	})

	t.Run("raised hand reaches the host's queue", func(t *testing.T) {
		step(t, host.ctx, "host opens the participants", wait, click("button", "Participants"))
		// H is the shortcut; the focus is on the page, not in a field.
		step(t, s1.ctx, "student raises a hand with H", wait,
			js(`document.activeElement?.blur(), true`),
			chromedp.KeyEvent("h"),
			chromedp.WaitVisible("lower hand", byRole("button", "Lower hand")),
		)
		until(t, host, "the hand is in the queue", wait, `return document.getElementById("hands-list").textContent.includes("Sid One");`)
		step(t, host.ctx, "host lowers it", wait, click("button", "Lower hand of Sid One"))
		until(t, s1, "the student's hand is down", wait, `return document.getElementById("btn-hand").textContent === "Raise hand";`)
		until(t, host, "the queue is empty", wait, `return document.getElementById("hands-list").children.length === 0;`)
	})

	t.Run("breakout rooms isolate and bring everyone back", func(t *testing.T) {
		step(t, host.ctx, "host opens breakout rooms", wait,
			click("button", "Breakout rooms"),
			setField("spinbutton", "Number of breakout rooms", "2"),
			click("button", "Create breakout rooms"),
			click("button", "Assign automatically"),
		)
		until(t, s1, "student one is in room 1", wait, `return document.getElementById("breakout-banner").textContent.includes("breakout room 1");`)
		until(t, s2, "student two is in room 2", wait, `return document.getElementById("breakout-banner").textContent.includes("breakout room 2");`)
		for _, pair := range [][2]person{{s1, s2}, {s2, s1}, {host, s1}, {host, s2}} {
			notReceiving(t, pair[0], id(pair[1])+"/camera")
			notReceiving(t, pair[0], id(pair[1])+"/mic")
		}
		step(t, host.ctx, "host sets a five-minute timer", wait, setField("spinbutton", "Timer in minutes", "5"), click("button", "Start timer"))
		for _, p := range []person{s1, s2} {
			until(t, p, "the student sees the rooms' timer", wait,
				`return /^Breakout rooms close in (5:0\d|4:[0-5]\d)$/.test(document.getElementById("breakout-timer").textContent);`)
		}
		step(t, s1.ctx, "student one writes in room 1", wait,
			chromedp.SetValue("send to", "everyone", byRole("combobox", "Send to"), chromedp.NodeVisible),
			typeInto("Message", "Hello from room one"), click("button", "Send"))
		step(t, s2.ctx, "student two writes in room 2", wait, typeInto("Message", "Hello from room two"), click("button", "Send"))
		until(t, s1, "own message shown", wait, chatLogHas("Hello from room one"))
		until(t, s2, "own message shown", wait, chatLogHas("Hello from room two"))
		step(t, host.ctx, "host broadcasts to every room", wait,
			typeInto("Message to every room", "Two minutes left"), click("button", "Broadcast"))
		for _, p := range []person{s1, s2} {
			until(t, p, "broadcast reaches every room", wait, chatLogHas("Two minutes left"))
		}
		// The broadcast came after both messages: had either crossed, it
		// would be here by now.
		until(t, s1, "room two's chat stays there", wait, `return !document.getElementById("chat-log").textContent.includes("room two");`)
		until(t, s2, "room one's chat stays there", wait, `return !document.getElementById("chat-log").textContent.includes("room one");`)
		until(t, host, "the main room's chat is its own", wait, `return !document.getElementById("chat-log").textContent.includes("Hello from room");`)

		step(t, host.ctx, "host closes the breakout rooms", wait, click("button", "Close breakout rooms"))
		for _, p := range []person{s1, s2} {
			until(t, p, "back in the main room", wait, `return document.getElementById("breakout-banner").hidden;`)
		}
		decodes(t, s1, id(s2)+"/camera")
		decodes(t, s2, id(s1)+"/camera")
		decodes(t, host, id(s1)+"/camera")
	})

	t.Run("mute all", func(t *testing.T) {
		for _, p := range []person{s1, s2} {
			until(t, host, p.name+"'s microphone is forwarded", wait, fmt.Sprintf(`return window.liveclass.tracks().includes(%q);`, id(p)+"/mic"))
		}
		step(t, host.ctx, "host mutes everyone", wait, click("button", "Mute all"))
		for _, p := range []person{s1, s2} {
			until(t, p, "the microphone shows muted", wait, `return document.getElementById("btn-mic").textContent === "Unmute";`)
			until(t, p, "told who muted them", wait, `return document.getElementById("live-status").textContent.includes("Hana Host muted your microphone");`)
			notReceiving(t, host, id(p)+"/mic")
		}
		until(t, host, "the participants list shows them muted", wait,
			`return [...document.querySelectorAll("#people-list .person")].filter(li => li.textContent.includes("muted")).length === 2;`)
		// The host's own microphone is untouched.
		until(t, s1, "the host is still heard", wait, fmt.Sprintf(`return window.liveclass.tracks().includes(%q);`, id(host)+"/mic"))
		// With microphones locked, a student cannot unmute (M is the shortcut).
		step(t, host.ctx, "host locks microphones", wait, click("checkbox", "Lock microphones"))
		until(t, s1, "the student is told", wait, `return document.getElementById("live-status").textContent.includes("A host has locked microphones");`)
		step(t, s1.ctx, "student tries to unmute with M", wait, js(`document.activeElement?.blur(), true`), chromedp.KeyEvent("m"))
		until(t, s1, "the student stays muted", wait,
			`return document.getElementById("live-alert").textContent.includes("locked microphones") && document.getElementById("btn-mic").textContent === "Unmute";`)
		notReceiving(t, host, id(s1)+"/mic")
		step(t, host.ctx, "host unlocks microphones", wait, click("checkbox", "Lock microphones"))
		until(t, s1, "the lock is lifted", wait, `return !document.getElementById("live-status").textContent.includes("locked");`)
	})

	t.Run("reconnect after a network drop", func(t *testing.T) {
		if conns.drop(s1.user.ID) == 0 {
			t.Fatal("student one has no signalling connection to cut")
		}
		until(t, s1, "the page reconnects with its resume key", wait,
			`return document.getElementById("live-status").textContent === "Reconnected." && document.getElementById("live-alert").hidden;`)
		decodes(t, s1, id(host)+"/camera")
		decodes(t, host, id(s1)+"/camera")
		until(t, s1, "the indicator recovers", wait, `return document.getElementById("quality").textContent !== "Connection: lost";`)
		until(t, s1, "still muted, as before the drop", wait, `return document.getElementById("btn-mic").textContent === "Unmute";`)
		until(t, host, "the host never saw student one leave", wait, fmt.Sprintf(`return window.liveclass.state.people.has(%q);`, id(s1)))
	})

	t.Run("reactions and polls", func(t *testing.T) {
		step(t, s2.ctx, "student reacts", wait, click("button", "Reactions"), click("button", "React with 👏"))
		until(t, host, "the reaction shows on the student's tile", wait, fmt.Sprintf(
			`return document.querySelector('.tile[data-participant=%q] .reaction')?.textContent === "👏";`, id(s2)))
		step(t, host.ctx, "host asks a question", wait,
			click("button", "Polls"),
			typeInto("Question", "Which topic next?"),
			chromedp.SendKeys("options", "Channels\nGenerics\nTesting", byRole("textbox", "Options, one per line (2 to 10)"), chromedp.NodeVisible),
			click("button", "Start poll"),
		)
		for _, p := range []person{s1, s2} {
			step(t, p.ctx, p.name+" votes", wait, click("radio", "Generics"), click("button", "Vote"), waitText("You voted: Generics", wait))
		}
		until(t, host, "results are live for the host", wait, `return document.querySelector(".results")?.textContent.includes("2 of 2");`)
		until(t, s1, "students see no results while the poll is open", wait, `return document.querySelector(".results") === null;`)
		step(t, host.ctx, "host closes the poll", wait, click("button", "Close poll: Which topic next?"))
		until(t, s1, "everyone sees the results when it closes", wait, `return document.querySelector(".results")?.textContent.includes("2 of 2");`)
	})

	t.Run("host page", func(t *testing.T) {
		step(t, host.ctx, "every control on the host's page is named", wait, everyControlNamed())
		screenshot(t, host, "live-host.png")
		screenshot(t, s1, "live-student.png")
	})
	t.Run("remove and end", func(t *testing.T) {
		step(t, host.ctx, "host removes a student", wait, click("button", "Remove Sue Two"))
		until(t, s2, "the student is told", wait,
			`return document.getElementById("left-reason").textContent.includes("Hana Host removed you from the class");`)
		until(t, s2, "and cannot simply rejoin", wait, `return document.getElementById("rejoin").hidden;`)
		step(t, host.ctx, "host ends the class", wait, click("button", "End class"), click("button", "End the class for everyone"))
		for _, p := range []person{host, s1} {
			until(t, p, "everyone is told the class ended", wait,
				`return !document.getElementById("left").hidden && document.getElementById("left-reason").textContent.includes("The class has ended");`)
		}
		got, err := e.st.ClassByID(ctx, c.ID)
		if err != nil || got.Status != store.StatusEnded {
			t.Fatalf("class status %q (%v), want ENDED", got.Status, err)
		}
	})
	t.Logf("three-browser classroom scenario took %v", time.Since(begin).Round(100*time.Millisecond))
}
