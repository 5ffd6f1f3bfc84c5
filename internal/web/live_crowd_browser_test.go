package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/liveclass/liveclass/client/rtc"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/web"
)

// attendee is a student in the class as a Pion participant: the other
// people a host looks at, without a browser each.
type attendee struct {
	user store.User
	p    *rtc.Participant
	log  *rtc.Log
}

// crowd enrolls and joins students of class c as Pion participants, n at
// a time side by side; names are prefix and a two-digit number from
// first.
type crowd struct {
	t        *testing.T
	e        *env
	c        store.LiveClass
	url      string
	pub, sub *webrtc.API
}

func newCrowd(t *testing.T, e *env, c store.LiveClass) *crowd {
	t.Helper()
	pub, sub, err := rtc.NewAPIs(rtc.APIOptions{LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return &crowd{t: t, e: e, c: c, url: "ws" + strings.TrimPrefix(e.srv.URL, "http") + web.SignalPath, pub: pub, sub: sub}
}

// join makes students first … first+n-1 and joins them all.
func (cr *crowd) join(first, n int, muted bool) []*attendee {
	cr.t.Helper()
	ctx := context.Background()
	out := make([]*attendee, n)
	for i := range out {
		num := first + i
		u := cr.e.user(fmt.Sprintf("student%02d@example.com", num), fmt.Sprintf("Student %02d", num), store.RoleStudent)
		if _, err := cr.e.classes.Enroll(ctx, actor(u), cr.c.ID, ""); err != nil {
			cr.t.Fatal(err)
		}
		out[i] = &attendee{user: u, log: &rtc.Log{}}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, a := range out {
		wg.Go(func() {
			g, err := cr.e.classes.GenerateJoinToken(ctx, actor(a.user), cr.c.ID)
			if err != nil {
				errs[i] = err
				return
			}
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			a.p, errs[i] = rtc.Dial(dctx, cr.url, g.Token, rtc.Options{
				Class: string(cr.c.ID), Muted: muted, OnMessage: a.log.Record,
				PublisherAPI: cr.pub, SubscriberAPI: cr.sub,
			})
		})
	}
	wg.Wait()
	for i, a := range out {
		if errs[i] != nil {
			cr.t.Fatalf("%s joins: %v", a.user.Name, errs[i])
		}
		cr.t.Cleanup(a.p.Close)
	}
	return out
}

// speak publishes a microphone that stamps every 20 ms packet with an
// audio level (RFC 6464), as a browser does: -10 dBov while loud is set,
// silence otherwise. The server picks the active speaker from these
// levels alone, so the payload need not be real speech.
func speak(t *testing.T, a *attendee, loud *atomic.Bool) {
	t.Helper()
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "s")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pubs, err := a.p.Publish(ctx, rtc.Publication{
		Tracks: []rtc.Outgoing{{Source: rtc.SourceMic, Tracks: []webrtc.TrackLocal{track}}},
		Media:  &rtc.Media{Mic: true},
	})
	if err != nil {
		t.Fatalf("%s publishes a microphone: %v", a.user.Name, err)
	}
	midID, _, levelID := rtc.ExtensionIDs(pubs[0].Sender)
	if levelID == 0 {
		t.Fatal("the audio level extension was not negotiated")
	}
	mid := pubs[0].Mid
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		payload := append([]byte{0xfc}, make([]byte, 80)...)
		for i := uint32(0); ; i++ {
			select {
			case <-stop:
				return
			case <-a.p.Done():
				return
			case <-tick.C:
			}
			level := byte(127) // -127 dBov: silence
			if loud.Load() {
				level = 10
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: i * 960}, Payload: payload}
			_ = pkt.Header.SetExtension(midID, []byte(mid))
			_ = pkt.Header.SetExtension(levelID, []byte{level})
			if err := track.WriteRTP(pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
				return
			}
		}
	})
}

// setDevices sets the browser's camera and microphone permission for
// origin, as a person does in the site settings: denied, getUserMedia
// fails with the browser's own NotAllowedError, not one a script made up.
func setDevices(t *testing.T, ctx context.Context, origin string, setting cdpbrowser.PermissionSetting) {
	t.Helper()
	b := chromedp.FromContext(ctx).Browser
	for _, name := range []string{"camera", "microphone"} {
		_, err := cdp.Call(ctx, b, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: setting, Origin: origin,
		})
		if err != nil {
			t.Fatalf("set %s permission to %s: %v", name, setting, err)
		}
	}
}

// tiles is the JavaScript list of the participant ids of the tiles shown,
// in order.
const tiles = `[...document.querySelectorAll("#grid .tile")].map(li => li.dataset.participant)`

// TestBrowserLiveCrowd is one host in Chromium with thirty students as
// Pion participants. The host's camera and microphone are first blocked
// in the browser's permission settings, then allowed; the host joins
// muted with the camera off, is refused the camera while it is blocked
// again, and uses the keyboard shortcuts. Then the grid pages past 24
// tiles, a tile is pinned, the active speaker is highlighted and moves,
// the host locks the room, lowers the hands in the queue and mutes a
// student, the breakout timer counts down and the host visits a breakout
// room, the network drops and comes back, a student is removed, and the
// host leaves.
func TestBrowserLiveCrowd(t *testing.T) {
	begin := time.Now()
	e, conns := newLiveEnv(t)
	ctx := context.Background()
	hostUser := e.user("hana@example.com", "Hana Host", store.RoleMentor)
	c := e.class(hostUser, "Crowded class", time.Now().Add(5*time.Minute), func(in *classes.ClassInput) { in.MaxParticipants = 40 })
	live := e.srv.URL + "/classes/" + string(c.ID) + "/live"
	const wait = 30 * time.Second

	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)
	// Without the flag that accepts every device prompt: the browser asks
	// its permission settings, where the test blocks camera and microphone.
	hctx, err := newMediaBrowser(bctx, t, chromiumPath(t), chromedp.Flag("use-fake-ui-for-media-stream", false))
	if err != nil {
		t.Fatal(err)
	}
	host := person{name: "host", user: hostUser, ctx: hctx}

	ok := t.Run("blocked camera and microphone, then allowed", func(t *testing.T) {
		step(t, host.ctx, "host signs in", wait,
			chromedp.Navigate(e.srv.URL+"/signin"),
			typeInto("Email", hostUser.Email),
			chromedp.SendKeys("password", "password123", byRole("", "Password"), chromedp.NodeVisible),
			follow("button", "Sign in"),
		)
		setDevices(t, host.ctx, e.srv.URL, cdpbrowser.PermissionSettingDenied)
		step(t, host.ctx, "host opens the classroom", wait, chromedp.Navigate(live), waitText("Before you join", wait))
		until(t, host, "the page says, once, that both devices are blocked and what to do", wait,
			`const a = document.getElementById("live-alert"); return !a.hidden && a.textContent
				=== "Access to your camera and microphone is blocked. Allow them in your browser's site settings and reload the page; you can still join without them.";`)
		screenshot(t, host, "live-blocked.png")
		until(t, host, "no preview and a still meter", wait,
			`return document.getElementById("preview").srcObject === null && document.getElementById("mic-level").value === 0;`)
		step(t, host.ctx, "every control of the device check is named", wait, everyControlNamed())

		// As the message says: allow, and reload.
		setDevices(t, host.ctx, e.srv.URL, cdpbrowser.PermissionSettingGranted)
		step(t, host.ctx, "host reloads the page", wait, chromedp.Navigate(live), waitText("Before you join", wait))
		step(t, host.ctx, "host picks low-bandwidth video", wait,
			chromedp.SetValue("video quality", "180", byRole("combobox", "Video quality"), chromedp.NodeVisible),
			js(`document.getElementById("quality-select").dispatchEvent(new Event("change")), true`),
		)
		until(t, host, "the preview plays and the alert is gone", wait,
			`const v = document.getElementById("preview"); return v.videoHeight > 0 && v.videoHeight <= 180 && document.getElementById("live-alert").hidden;`)
		step(t, host.ctx, "host joins muted with the camera off", wait,
			click("checkbox", "Join muted"),
			click("checkbox", "Join with camera off"),
			click("button", "Join"),
			waitText("You are in the classroom.", wait),
		)
		until(t, host, "the room has the host muted with the camera off, and the camera's light is out", wait,
			`const S = window.liveclass.state; return S.you.media.mic === false && S.you.media.camera === false && S.local.camera === null
				&& document.getElementById("btn-mic").textContent === "Unmute" && document.getElementById("btn-camera").textContent === "Start video";`)
		step(t, host.ctx, "host unmutes with M", wait, js(`document.activeElement?.blur(), true`), chromedp.KeyEvent("m"))
		until(t, host, "the room has the microphone on", wait,
			`return window.liveclass.state.you.media.mic === true && document.getElementById("btn-mic").textContent === "Mute";`)
		step(t, host.ctx, "host mutes again with M", wait, chromedp.KeyEvent("m"))
		until(t, host, "the room has the microphone off", wait,
			`return window.liveclass.state.you.media.mic === false && document.getElementById("btn-mic").textContent === "Unmute";`)

		// Blocked while in the room: the camera, off, must be asked for again.
		setDevices(t, host.ctx, e.srv.URL, cdpbrowser.PermissionSettingDenied)
		step(t, host.ctx, "host tries to start the video with V", wait, chromedp.KeyEvent("v"))
		until(t, host, "told the camera is blocked, and the video stays off", wait,
			`return document.getElementById("live-alert").textContent === "Access to your camera is blocked. Allow it in your browser's site settings and reload the page; you can still join without it."
				&& document.getElementById("btn-camera").textContent === "Start video" && window.liveclass.state.you.media.camera === false;`)
		setDevices(t, host.ctx, e.srv.URL, cdpbrowser.PermissionSettingGranted)
		step(t, host.ctx, "host starts the video", wait, click("button", "Start video"))
		until(t, host, "the host's own tile plays the camera and the room knows", wait, fmt.Sprintf(
			`const v = document.querySelector('.tile[data-participant=%q] video');
			return v && v.videoWidth > 0 && window.liveclass.state.you.media.camera === true && document.getElementById("btn-camera").textContent === "Stop video";`,
			string(hostUser.ID)))
		step(t, host.ctx, "host stops the video with V", wait, js(`document.activeElement?.blur(), true`), chromedp.KeyEvent("v"))
		until(t, host, "the camera is off again", wait,
			`return window.liveclass.state.you.media.camera === false && window.liveclass.state.local.camera === null;`)
	})
	if !ok {
		return
	}

	t.Run("keyboard shortcuts", func(t *testing.T) {
		blur := js(`document.activeElement?.blur(), true`)
		step(t, host.ctx, "? opens the list of shortcuts", wait, blur, chromedp.KeyEvent("?"))
		until(t, host, "the dialog is open", wait, `return document.getElementById("help").open;`)
		step(t, host.ctx, "host closes it", wait, everyControlNamed(), click("button", "Close"))
		until(t, host, "the dialog is closed", wait, `return !document.getElementById("help").open;`)
		for _, k := range []struct{ key, button, panel string }{{"c", "btn-chat", "chat-panel"}, {"p", "btn-people", "people-panel"}} {
			open := fmt.Sprintf(`!document.getElementById(%q).hidden && document.getElementById(%q).getAttribute("aria-expanded") === "true"`, k.panel, k.button)
			step(t, host.ctx, k.key+" opens "+k.panel, wait, blur, chromedp.KeyEvent(k.key))
			until(t, host, k.panel+" is open and its button says so", wait, "return "+open+";")
			step(t, host.ctx, k.key+" closes it", wait, blur, chromedp.KeyEvent(k.key))
			until(t, host, k.panel+" is closed", wait, "return !("+open+");")
		}
	})

	cr := newCrowd(t, e, c)
	// The two speakers join first, so that their tiles are on the first
	// page whatever the order of the others.
	speakers := cr.join(1, 2, false)
	a, b := speakers[0], speakers[1]
	var aLoud, bLoud atomic.Bool
	aLoud.Store(true)
	speak(t, a, &aLoud)
	speak(t, b, &bLoud)
	tile := func(u store.User) string {
		return fmt.Sprintf(`document.querySelector('.tile[data-participant=%q]')`, string(u.ID))
	}
	speaking := func(u store.User) string {
		return fmt.Sprintf(`(() => { const t = %s; return !!t && t.classList.contains("speaking") && t.getAttribute("aria-label") === %q; })()`,
			tile(u), u.Name+", speaking")
	}

	ok = t.Run("active speaker", func(t *testing.T) {
		until(t, host, a.user.Name+" is highlighted as speaking", wait, fmt.Sprintf(`return %s && !%s;`, speaking(a.user), speaking(b.user)))
		aLoud.Store(false)
		bLoud.Store(true)
		until(t, host, "the highlight moves to "+b.user.Name, wait, fmt.Sprintf(`return %s && !%s
			&& document.querySelectorAll("#grid .tile.speaking").length === 1;`, speaking(b.user), speaking(a.user)))
	})
	if !ok {
		return
	}

	others := cr.join(3, 28, true)
	everyone := append(append([]*attendee{}, speakers...), others...)

	ok = t.Run("paging past 24 tiles", func(t *testing.T) {
		until(t, host, "31 people on two pages", wait, `return window.liveclass.state.people.size === 31
			&& !document.getElementById("pager").hidden && document.getElementById("page-info").textContent === "Page 1 of 2";`)
		until(t, host, "the first page holds 24 tiles, the host's own first", wait, fmt.Sprintf(`const t = %s; return t.length === 24 && t[0] === %q
			&& document.getElementById("page-prev").disabled && !document.getElementById("page-next").disabled;`, tiles, string(hostUser.ID)))
		until(t, host, "a tile without video shows initials of words, not digits", wait, fmt.Sprintf(
			`return %s.querySelector(".avatar").textContent === "S" && %s.querySelector(".avatar").textContent === "HH";`,
			tile(a.user), tile(hostUser)))
		first, err := chromedp.Run(host.ctx, chromedp.Evaluate[[]string](tiles))
		if err != nil {
			t.Fatal(err)
		}
		screenshot(t, host, "live-crowd.png")
		step(t, host.ctx, "host goes to the next page", wait, everyControlNamed(), click("button", "Next page"))
		until(t, host, "the second page holds the other 7", wait, fmt.Sprintf(`const t = %s, first = %s;
			return document.getElementById("page-info").textContent === "Page 2 of 2" && t.length === 7
				&& t.every(id => !first.includes(id)) && new Set([...first, ...t]).size === 31
				&& !document.getElementById("page-prev").disabled && document.getElementById("page-next").disabled;`, tiles, jsStrings(first)))
	})
	if !ok {
		return
	}

	t.Run("pinning a tile", func(t *testing.T) {
		second, err := chromedp.Run(host.ctx, chromedp.Evaluate[[]string](tiles))
		if err != nil || len(second) == 0 {
			t.Fatalf("tiles of the second page: %v %v", second, err)
		}
		var pinned *attendee
		for _, x := range everyone {
			if string(x.user.ID) == second[len(second)-1] {
				pinned = x
			}
		}
		if pinned == nil {
			t.Fatalf("the last tile %q is no student's", second[len(second)-1])
		}
		pinnedOnly := fmt.Sprintf(`const t = %s, p = document.querySelectorAll("#grid .tile.pinned");
			return t[0] === %q && p.length === 1 && p[0].dataset.participant === %q`, tiles, string(pinned.user.ID), string(pinned.user.ID))
		step(t, host.ctx, "host pins "+pinned.user.Name, wait, click("button", "Pin "+pinned.user.Name))
		until(t, host, "the pinned tile comes first", wait, pinnedOnly+";")
		step(t, host.ctx, "host goes back to the first page", wait, click("button", "Previous page"))
		until(t, host, "the pinned tile leads the first page too", wait, pinnedOnly+fmt.Sprintf(` && %s.length === 24
			&& document.getElementById("page-info").textContent === "Page 1 of 2";`, tiles))
		step(t, host.ctx, "host unpins", wait, click("button", "Unpin "+pinned.user.Name))
		until(t, host, "no tile is pinned and the host's own leads again", wait, fmt.Sprintf(
			`return document.querySelectorAll("#grid .tile.pinned").length === 0 && %s[0] === %q;`, tiles, string(hostUser.ID)))
	})

	t.Run("host controls over students", func(t *testing.T) {
		step(t, host.ctx, "host locks the room", wait, click("button", "Participants"), click("checkbox", "Lock room"))
		until(t, host, "the room is locked", wait, `return window.liveclass.state.locked === true;`)
		late := e.user("late@example.com", "Lou Late", store.RoleStudent)
		if _, err := e.classes.Enroll(ctx, actor(late), c.ID, ""); err != nil {
			t.Fatal(err)
		}
		g, err := e.classes.GenerateJoinToken(ctx, actor(late), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		dctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		p, err := rtc.Dial(dctx, cr.url, g.Token, rtc.Options{Class: string(c.ID), PublisherAPI: cr.pub, SubscriberAPI: cr.sub})
		var refused *rtc.Error
		if !errors.As(err, &refused) || refused.Reason != "locked" {
			if p != nil {
				p.Close()
			}
			t.Fatalf("a late student joins a locked room: %v, want refused as locked", err)
		}
		step(t, host.ctx, "host unlocks the room", wait, click("checkbox", "Lock room"))
		until(t, host, "the room is open", wait, `return window.liveclass.state.locked === false;`)

		// Hands go up in an order the host sees.
		first, second := others[5], others[2]
		for _, x := range []*attendee{first, second} {
			if _, err := x.p.Request(dctx, "hand", map[string]any{"raised": true}); err != nil {
				t.Fatalf("%s raises a hand: %v", x.user.Name, err)
			}
		}
		until(t, host, "the queue shows both, in the order raised", wait, fmt.Sprintf(
			`const q = [...document.querySelectorAll("#hands-list .name")].map(n => n.textContent);
			return q.length === 2 && q[0] === %q && q[1] === %q && document.getElementById("hands-empty").hidden;`, first.user.Name, second.user.Name))
		step(t, host.ctx, "host lowers all hands", wait, click("button", "Lower all hands"))
		until(t, host, "the queue is empty", wait,
			`return document.getElementById("hands-list").children.length === 0 && !document.getElementById("hands-empty").hidden
				&& [...window.liveclass.state.people.values()].every(p => !p.hand);`)

		// The student speaking is muted by the host.
		bMic := string(b.user.ID) + "/mic"
		until(t, host, b.user.Name+"'s microphone is forwarded", wait, fmt.Sprintf(`return window.liveclass.tracks().includes(%q);`, bMic))
		step(t, host.ctx, "host mutes "+b.user.Name, wait, click("button", "Mute "+b.user.Name))
		if _, err := b.log.Wait(dctx, rtc.OfType("muted")); err != nil {
			t.Fatalf("the student was not told: %v", err)
		}
		until(t, host, "the tile says muted and the microphone is no longer forwarded", wait, fmt.Sprintf(
			`return %s.querySelector(".state").textContent.includes("muted") && !window.liveclass.tracks().includes(%q);`, tile(b.user), bMic))
		step(t, host.ctx, "host closes the participants", wait, click("button", "Participants"))
	})

	t.Run("breakout timer and a host's visit", func(t *testing.T) {
		step(t, host.ctx, "host makes two rooms and fills them", wait,
			click("button", "Breakout rooms"),
			setField("spinbutton", "Number of breakout rooms", "2"),
			click("button", "Create breakout rooms"),
			click("button", "Assign automatically"),
		)
		until(t, host, "every student is in a room", wait,
			`return [...window.liveclass.state.people.values()].filter(p => p.role !== "HOST" && p.group === "").length === 0;`)
		step(t, host.ctx, "every assignment control is named", wait, everyControlNamed())
		step(t, host.ctx, "host sets a ten-minute timer", wait,
			setField("spinbutton", "Timer in minutes", "10"),
			click("button", "Start timer"),
		)
		const left = `(() => { const m = /close in (\d+):(\d\d)$/.exec(document.getElementById("breakout-timer").textContent);
			return m ? Number(m[1]) * 60 + Number(m[2]) : -1; })()`
		// About: the page counts by the server's clock as read when the
		// page loaded, which a busy machine delays by a moment.
		until(t, host, "the timer shows about ten minutes", wait, `const s = `+left+`; window.__left = s; return s > 570 && s <= 610;`)
		until(t, host, "and counts down", wait, `const s = `+left+`; return s >= 0 && s < window.__left;`)
		// The students hear of the timer and their room over the same
		// protocol; the page's countdown is theirs too.
		tctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		for _, x := range everyone {
			_, err := x.log.Wait(tctx, func(m rtc.Message) bool {
				var got struct {
					TimerEndsAt *string `json:"timerEndsAt"`
					You         string  `json:"you"`
				}
				return m.Type == "breakouts" && m.Decode(&got) == nil && got.TimerEndsAt != nil && got.You != ""
			})
			if err != nil {
				t.Fatalf("%s was not told the timer and their room: %v", x.user.Name, err)
			}
		}

		step(t, host.ctx, "host visits room 1", wait, setField("combobox", "Room to visit", "b1"), click("button", "Visit"))
		until(t, host, "told where they are", wait, `return document.getElementById("live-status").textContent === "You are now in breakout room 1."
			&& document.getElementById("breakout-banner").textContent === "You are in breakout room 1.";`)
		until(t, host, "the grid shows room 1 only, on one page", wait, fmt.Sprintf(`const t = %s, S = window.liveclass.state;
			const room = [...S.people.values()].filter(p => p.group === "b1").map(p => p.id);
			return room.length === 16 && t.length === 16 && t.every(id => room.includes(id)) && document.getElementById("pager").hidden;`, tiles))
		step(t, host.ctx, "host goes back to the main room", wait, setField("combobox", "Room to visit", ""), click("button", "Visit"))
		until(t, host, "back in the main room", wait, `return document.getElementById("live-status").textContent === "You are back in the main room."
			&& document.getElementById("breakout-banner").hidden;`)
		step(t, host.ctx, "host closes the rooms", wait, click("button", "Close breakout rooms"))
		until(t, host, "everyone is back, paged again, and the timer gone", wait, fmt.Sprintf(`return %s.length === 24
			&& !document.getElementById("pager").hidden && document.getElementById("breakout-timer").hidden;`, tiles))
	})

	t.Run("the network drops and comes back", func(t *testing.T) {
		conns.block(hostUser.ID, true)
		if conns.drop(hostUser.ID) == 0 {
			t.Fatal("the host has no signalling connection to cut")
		}
		until(t, host, "the page says it is reconnecting, and tries again", wait,
			`return document.getElementById("live-alert").textContent.startsWith("The connection dropped. Reconnecting (attempt 2)")
				&& document.getElementById("quality").textContent === "Connection: lost";`)
		conns.block(hostUser.ID, false)
		until(t, host, "reconnected, the alert gone", wait,
			`return document.getElementById("live-status").textContent === "Reconnected." && document.getElementById("live-alert").hidden
				&& window.liveclass.state.people.size === 31;`)
	})

	t.Run("a student is removed", func(t *testing.T) {
		gone := others[len(others)-1]
		step(t, host.ctx, "host removes "+gone.user.Name, wait, click("button", "Participants"), click("button", "Remove "+gone.user.Name))
		rctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if _, err := gone.log.Wait(rctx, rtc.OfType("removed")); err != nil {
			t.Fatalf("the student was not told: %v", err)
		}
		select {
		case <-gone.p.Done():
		case <-rctx.Done():
			t.Fatal("the removed student's connection stays open")
		}
		until(t, host, "the student is gone from the grid and the list", wait, fmt.Sprintf(`return !window.liveclass.state.people.has(%q)
			&& !document.getElementById("people-list").textContent.includes(%q);`, string(gone.user.ID), gone.user.Name))
		step(t, host.ctx, "every control on the crowded page is named", wait, everyControlNamed())
	})
	t.Run("the host leaves", func(t *testing.T) {
		step(t, host.ctx, "host clicks Leave", wait, click("button", "Leave"))
		until(t, host, "told they left, and offered to join again", wait,
			`return !document.getElementById("left").hidden && document.getElementById("room").hidden
				&& document.getElementById("left-reason").textContent === "You left the class." && !document.getElementById("rejoin").hidden;`)
		step(t, host.ctx, "every control of the page left is named", wait, everyControlNamed())
		lctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if _, err := a.log.Wait(lctx, func(m rtc.Message) bool {
			var left struct {
				Participant string `json:"participant"`
			}
			return m.Type == "participant.left" && m.Decode(&left) == nil && left.Participant == string(hostUser.ID)
		}); err != nil {
			t.Fatalf("the students were not told the host left: %v", err)
		}
	})
	t.Logf("one browser and thirty Pion students took %v", time.Since(begin).Round(100*time.Millisecond))
}

// jsStrings is ss as a JavaScript array literal.
func jsStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ",") + "]"
}
