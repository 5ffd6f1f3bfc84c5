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

// denyDevices makes the browser refuse camera and microphone to origin,
// as it does for a person who clicked Block: the page then gets the real
// NotAllowedError from getUserMedia, not one a script made up.
func denyDevices(t *testing.T, ctx context.Context, origin string) {
	t.Helper()
	b := chromedp.FromContext(ctx).Browser
	for _, name := range []string{"camera", "microphone"} {
		_, err := cdp.Call(ctx, b, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: cdpbrowser.PermissionSettingDenied, Origin: origin,
		})
		if err != nil {
			t.Fatalf("deny %s: %v", name, err)
		}
	}
}

// tiles is the JavaScript list of the participant ids of the tiles shown,
// in order.
const tiles = `[...document.querySelectorAll("#grid .tile")].map(li => li.dataset.participant)`

// TestBrowserLiveCrowd is one host in Chromium with thirty students as
// Pion participants: the host's camera and microphone are blocked, the
// grid pages past 24 tiles, a tile is pinned, the active speaker is
// highlighted and moves, the breakout timer counts down and the host
// visits a breakout room, the network drops and comes back, and a
// student is removed.
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

	ok := t.Run("blocked camera and microphone", func(t *testing.T) {
		step(t, host.ctx, "host signs in", wait,
			chromedp.Navigate(e.srv.URL+"/signin"),
			typeInto("Email", hostUser.Email),
			chromedp.SendKeys("password", "password123", byRole("", "Password"), chromedp.NodeVisible),
			follow("button", "Sign in"),
		)
		denyDevices(t, host.ctx, e.srv.URL)
		step(t, host.ctx, "host opens the classroom", wait, chromedp.Navigate(live), waitText("Before you join", wait))
		until(t, host, "the page says, once, that both devices are blocked and what to do", wait,
			`const a = document.getElementById("live-alert"); return !a.hidden && a.textContent
				=== "Access to your camera and microphone is blocked. Allow them in your browser's site settings and reload the page; you can still join without them.";`)
		screenshot(t, host, "live-blocked.png")
		until(t, host, "no preview and a still meter", wait,
			`return document.getElementById("preview").srcObject === null && document.getElementById("mic-level").value === 0;`)
		step(t, host.ctx, "host joins without devices", wait,
			everyControlNamed(),
			click("button", "Join"),
			waitText("You are in the classroom.", wait),
		)
		until(t, host, "the controls offer to turn the devices on", wait,
			`return document.getElementById("btn-mic").textContent === "Unmute" && document.getElementById("btn-camera").textContent === "Start video";`)
		step(t, host.ctx, "host tries to start the video", wait, click("button", "Start video"))
		until(t, host, "told the camera is blocked, and the video stays off", wait,
			`return document.getElementById("live-alert").textContent.startsWith("Access to your camera is blocked. Allow it")
				&& document.getElementById("btn-camera").textContent === "Start video";`)
		step(t, host.ctx, "host tries to unmute with M", wait, js(`document.activeElement?.blur(), true`), chromedp.KeyEvent("m"))
		until(t, host, "told the microphone is blocked, and stays muted", wait,
			`return document.getElementById("live-alert").textContent.startsWith("Access to your microphone is blocked. Allow it")
				&& document.getElementById("btn-mic").textContent === "Unmute";`)
	})
	if !ok {
		return
	}

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
		until(t, host, "the timer shows about ten minutes", wait, `const s = `+left+`; window.__left = s; return s > 590 && s <= 600;`)
		until(t, host, "and counts down", wait, `const s = `+left+`; return s >= 0 && s < window.__left;`)
		// The students hear of the timer and their room over the same
		// protocol; the page's countdown is theirs too.
		told := func() int {
			n := 0
			for _, x := range everyone {
				m, ok := x.log.Last(rtc.OfType("breakouts"))
				var got struct {
					TimerEndsAt *string `json:"timerEndsAt"`
					You         string  `json:"you"`
				}
				if ok && m.Decode(&got) == nil && got.TimerEndsAt != nil && got.You != "" {
					n++
				}
			}
			return n
		}
		for deadline := time.Now().Add(wait); told() != len(everyone); {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d students were told the timer and their room", told(), len(everyone))
			}
			time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
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
