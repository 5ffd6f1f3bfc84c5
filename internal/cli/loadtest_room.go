package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveclass/liveclass/client"
	"github.com/liveclass/liveclass/client/rtc"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/pion/webrtc/v4"
	"golang.org/x/sync/errgroup"
)

const loadRoomUsage = `Usage: liveclass loadtest room [flags]

Joins --participants Pion clients per class to --classes live classes
through the real protocol (WebSocket /rtc, docs/protocol.md), ramping joins
at --join-rate. The first --cameras of each class publish a VP8 camera in
three simulcast layers, --screens a screen share; --mics publish Opus, of
which --speakers talk and the rest send DTX comfort noise. Everyone views
a grid of --tiles cameras and every screen share. After the ramp and
--settle it measures for --duration and reports joins, time to first
video frame, packets and bitrate received against published, loss from
sequence gaps, one-way delay (first half against second half of the run),
its own CPU, and with --server-pid the server's CPU and memory.

Join tokens come from the API (an admin creates the classes, students
sign up, enroll and ask for generateLiveClassToken), or, with --token-key
(the server's token key) and --class, are minted here for the user IDs in
--users (a file of IDs, one a line; the accounts must exist).`

// roomOptions are the flags of loadtest room.
type roomOptions struct {
	url                       string
	classes, participants     int
	cameras, mics, speakers   int
	screens, tiles            int
	tileW, tileH              int
	screenW, screenH          int
	joinRate                  float64
	settle, duration          time.Duration
	adminEmail, adminPassword string
	tokenKey                  string
	classIDs                  []string
	usersFile                 string
	shard, shards             int
	serverPIDs                []int
	cpuProfile                string
}

func loadRoomCmd(ctx context.Context, e Env, args []string) error {
	fs := newFlagSet("loadtest room", "", loadRoomUsage)
	var o roomOptions
	var tile, screenTile, serverPIDs, classIDs, shard, adminPasswordFile string
	fs.StringVar(&o.url, "url", "http://localhost:8080", "base URL of the server")
	fs.IntVar(&o.classes, "classes", 1, "live classes to fill")
	fs.IntVar(&o.participants, "participants", 50, "participants per class")
	fs.IntVar(&o.cameras, "cameras", 16, "participants per class who publish a camera (three simulcast layers)")
	fs.IntVar(&o.mics, "mics", 50, "participants per class who publish a microphone")
	fs.IntVar(&o.speakers, "speakers", 2, "of the microphones, how many talk all along (the others send DTX)")
	fs.IntVar(&o.screens, "screens", 1, "participants per class who share a screen")
	fs.IntVar(&o.tiles, "tiles", 16, "cameras each participant views (a 4×4 grid)")
	fs.StringVar(&tile, "tile", "320x180", "size of a camera tile in pixels")
	fs.StringVar(&screenTile, "screen-tile", "1280x720", "size of the screen-share view in pixels")
	fs.Float64Var(&o.joinRate, "join-rate", 10, "joins per second, over all classes")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "wait after the ramp, once every participant sees video (at most 15 s), before measuring")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to measure")
	fs.StringVar(&o.adminEmail, "admin-email", "admin@localhost", "admin account that creates the classes (API tokens)")
	fs.StringVar(&adminPasswordFile, "admin-password-file", "", "file holding the admin's password (or $LIVECLASS_ADMIN_PASSWORD)")
	fs.StringVar(&o.tokenKey, "token-key", "", "the server's token key: mint join tokens here instead of asking the API (or $LIVECLASS_TOKEN_KEY)")
	fs.StringVar(&classIDs, "class", "", "comma-separated IDs of existing CHIME classes to join instead of creating them")
	fs.StringVar(&o.usersFile, "users", "", "with --token-key: file of user IDs, one a line, one per participant")
	fs.StringVar(&shard, "shard", "", "i/n: run only the participants whose index is i modulo n, to split the load over n processes (needs --class)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the tester's CPU profile over the measured window to this file")
	fs.StringVar(&serverPIDs, "server-pid", "", "comma-separated process IDs of the server on this machine, to report its CPU and memory")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	var err error
	if o.tileW, o.tileH, err = parseSize(tile); err != nil {
		return usagef("loadtest room: --tile: %v", err)
	}
	if o.screenW, o.screenH, err = parseSize(screenTile); err != nil {
		return usagef("loadtest room: --screen-tile: %v", err)
	}
	for _, f := range splitList(serverPIDs) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return usagef("loadtest room: --server-pid: %q is not a process ID", f)
		}
		o.serverPIDs = append(o.serverPIDs, pid)
	}
	o.classIDs = splitList(classIDs)
	if len(o.classIDs) > 0 {
		o.classes = len(o.classIDs)
	}
	o.shards = 1
	if shard != "" {
		i, n, ok := strings.Cut(shard, "/")
		o.shard, err = strconv.Atoi(i)
		if ok && err == nil {
			o.shards, err = strconv.Atoi(n)
		}
		if !ok || err != nil || o.shards < 1 || o.shard < 0 || o.shard >= o.shards {
			return usagef("loadtest room: --shard must be i/n with 0 ≤ i < n")
		}
		if len(o.classIDs) == 0 {
			return usagef("loadtest room: --shard needs --class, so that every process joins the same classes")
		}
	}
	switch {
	case o.classes < 1 || o.participants < 1:
		return usagef("loadtest room: --classes and --participants must be ≥ 1")
	case o.cameras < 0 || o.mics < 0 || o.speakers < 0 || o.screens < 0 || o.tiles < 0:
		return usagef("loadtest room: --cameras, --mics, --speakers, --screens and --tiles must be ≥ 0")
	case o.cameras > o.participants || o.mics > o.participants || o.screens > o.participants:
		return usagef("loadtest room: --cameras, --mics and --screens are at most --participants (%d)", o.participants)
	case o.speakers > o.mics:
		return usagef("loadtest room: --speakers is at most --mics (%d)", o.mics)
	case o.tiles > 25:
		return usagef("loadtest room: --tiles is at most 25, what a participant may view")
	case o.joinRate <= 0 || o.duration <= 0 || o.settle < 0:
		return usagef("loadtest room: --join-rate and --duration must be > 0, --settle ≥ 0")
	}
	if o.tokenKey == "" {
		o.tokenKey = lookupEnv(e.Environ, "LIVECLASS_TOKEN_KEY")
	}
	if o.tokenKey != "" {
		if len(o.classIDs) == 0 {
			return usagef("loadtest room: --token-key needs --class: minted tokens join existing classes")
		}
		if o.usersFile == "" {
			return usagef("loadtest room: --token-key needs --users: a file of existing user IDs")
		}
	} else {
		o.adminPassword = lookupEnv(e.Environ, "LIVECLASS_ADMIN_PASSWORD")
		if adminPasswordFile != "" {
			if o.adminPassword, err = readSecretFile(adminPasswordFile); err != nil {
				return usagef("loadtest room: --admin-password-file: %v", err)
			}
		}
		if o.adminPassword == "" && len(o.classIDs) == 0 {
			return usagef("loadtest room: the admin's password is needed to create classes: --admin-password-file or $LIVECLASS_ADMIN_PASSWORD (or --token-key with --class and --users)")
		}
	}
	rep, err := runRoomTest(ctx, o)
	if err != nil {
		return err
	}
	rep.print(e.Stdout)
	if rep.joinsOK == 0 {
		return errors.New("loadtest room: no participant joined")
	}
	return nil
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

func parseSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(s, "x")
	if ok {
		w, err = strconv.Atoi(a)
		if err == nil {
			h, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		return 0, 0, fmt.Errorf("%q is not WIDTHxHEIGHT", s)
	}
	return w, h, nil
}

// defaultRoomMedia is what a browser sends: Chromium's three camera
// layers (180p at 15 fps, 360p and 720p at 30 fps), a 1080p screen share
// at 5 fps, Opus at 32 kbps in 20 ms frames, keyframes every 3 s.
func defaultRoomMedia() roomMedia {
	return roomMedia{
		camera: []layerSpec{
			{rid: ridNames[0], bitrate: 150_000, fps: 15, width: 320, height: 180},
			{rid: ridNames[1], bitrate: 500_000, fps: 30, width: 640, height: 360},
			{rid: ridNames[2], bitrate: 1_500_000, fps: 30, width: 1280, height: 720},
		},
		screen:   layerSpec{bitrate: 800_000, fps: 5, width: 1920, height: 1080},
		keyEvery: 3 * time.Second,
		speakPPS: 50,
		opusSize: 80, // 32 kbps
		dtxEvery: 400 * time.Millisecond,
		dtxSize:  stampLen + 3,
	}
}

// roomTest is one run of the load test.
type roomTest struct {
	opt            roomOptions
	media          roomMedia
	wsURL          string
	pubAPI, subAPI *webrtc.API
	phase          atomic.Int32 // 0 ramp and settle, 1 first half, 2 second half, 3 over
	plis           atomic.Uint64

	mu        sync.Mutex
	protoErrs map[string]int
}

func (t *roomTest) protocolError(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.protoErrs) < 50 {
		t.protoErrs[firstWords(s)]++
	}
}

// roomReport is what a run measured.
type roomReport struct {
	opt                roomOptions
	joinsOK, joinsFail int
	joinErrs           map[string]int
	rampTime           time.Duration
	framesWait         time.Duration // after the ramp, until everyone saw video
	joinLat            []time.Duration
	ttff               []time.Duration
	noFrame            int
	elapsed            time.Duration
	delta              peerTotals
	wantCams           int // camera tiles asked for, over all participants
	wantScreens        int // screen shares asked for
	delayHalf          [2][]uint64
	testerCPU          time.Duration
	serverCPU          []time.Duration
	serverRSS          []procMem
	serverRSSBefore    []procMem
	plis               uint64
	protoErrs          map[string]int
	received           int
}

func runRoomTest(ctx context.Context, o roomOptions) (*roomReport, error) {
	base, err := url.Parse(strings.TrimRight(o.url, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, usagef("loadtest room: --url %q is not an http(s) URL", o.url)
	}
	ws := *base
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[base.Scheme]
	ws.Path += "/rtc"
	t := &roomTest{opt: o, media: defaultRoomMedia(), wsURL: ws.String(), protoErrs: map[string]int{}}
	if t.pubAPI, t.subAPI, err = rtc.NewAPIs(rtc.APIOptions{LoopbackOnly: isLoopback(base.Hostname())}); err != nil {
		return nil, err
	}

	tokens, err := roomTokens(ctx, o)
	if err != nil {
		return nil, err
	}
	n := o.classes * o.participants
	var peers []*roomPeer
	for i := range n {
		if i%o.shards != o.shard {
			continue
		}
		k := i % o.participants // index within the class
		p := &roomPeer{
			t: t, index: i, token: tokens[i],
			cam: k < o.cameras, scr: k >= o.cameras && k < o.cameras+o.screens,
			mic: k < o.mics, speak: k < o.speakers,
			delay: &delayHist{}, stop: make(chan struct{}),
		}
		if o.cameras+o.screens > o.participants {
			p.scr = o.participants-k <= o.screens
		}
		peers = append(peers, p)
	}
	defer func() {
		var wg sync.WaitGroup
		for _, p := range peers {
			wg.Go(p.close)
		}
		wg.Wait()
	}()

	rep := &roomReport{opt: o, joinErrs: map[string]int{}, serverRSSBefore: procMemOf(o.serverPIDs)}
	// Ramp: participants interleaved over the classes, so that every class
	// fills at the same pace, publishers of each class first.
	order := slices.Clone(peers)
	slices.SortStableFunc(order, func(a, b *roomPeer) int {
		return (a.index%o.participants)*o.classes + a.index/o.participants - ((b.index%o.participants)*o.classes + b.index/o.participants)
	})
	interval := time.Duration(float64(time.Second) / o.joinRate * float64(o.shards))
	start := time.Now()
	var jmu sync.Mutex
	var wg sync.WaitGroup
	for i, p := range order {
		at := start.Add(time.Duration(i) * interval)
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		case <-time.After(time.Until(at)):
		}
		wg.Go(func() {
			err := p.run(ctx)
			jmu.Lock()
			defer jmu.Unlock()
			if err != nil {
				rep.joinsFail++
				rep.joinErrs[firstWords(err.Error())]++
				return
			}
			rep.joinsOK++
			rep.joinLat = append(rep.joinLat, p.joinedAt.Sub(p.joinStart))
		})
	}
	wg.Wait()
	rep.rampTime = time.Since(start)

	// Measure once everyone who joined sees video (or would have by now),
	// then after --settle: the window is the steady state, not the ramp.
	framesBy := time.Now().Add(maxFirstFrame)
	for !allSeeVideo(peers) && time.Now().Before(framesBy) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	rep.framesWait = time.Since(start) - rep.rampTime
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.settle):
	}
	sum := func() peerTotals {
		var s peerTotals
		for _, p := range peers {
			s.add(p.totals())
		}
		return s
	}
	before := sum()
	cpu0, srv0 := cpuTime(), processTreeCPU(o.serverPIDs)
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	t.phase.Store(1)
	half := o.duration / 2
	for _, d := range []time.Duration{half, o.duration - half} {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
		t.phase.Add(1)
	}
	rep.elapsed = time.Since(t0)
	rep.testerCPU = cpuTime() - cpu0
	rep.serverCPU = processTreeCPU(o.serverPIDs)
	for i := range rep.serverCPU {
		rep.serverCPU[i] -= srv0[i]
	}
	rep.serverRSS = procMemOf(o.serverPIDs)
	after := sum()
	rep.delta = after.sub(before)
	for _, p := range peers {
		p.mu.Lock()
		rep.wantCams += p.wantCams
		rep.wantScreens += p.wantScreens
		p.mu.Unlock()
	}
	rep.plis = t.plis.Load()
	rep.delayHalf = [2][]uint64{make([]uint64, 1500), make([]uint64, 1500)}
	for _, p := range peers {
		p.delay.mu.Lock()
		for h := range 2 {
			for i, v := range p.delay.b[h+1] {
				rep.delayHalf[h][i] += uint64(v)
			}
		}
		p.delay.mu.Unlock()
		if p.firstFrame.Load() == 0 {
			p.mu.Lock()
			joined := !p.joinedAt.IsZero() && p.joinErr == nil
			p.mu.Unlock()
			if joined {
				rep.noFrame++
			}
			continue
		}
		from := p.joinStart
		if v := p.videoSince.Load(); v > from.UnixNano() {
			from = time.Unix(0, v)
		}
		rep.ttff = append(rep.ttff, time.Unix(0, p.firstFrame.Load()).Sub(from))
		rep.received++
	}
	t.mu.Lock()
	rep.protoErrs = t.protoErrs
	t.mu.Unlock()
	return rep, nil
}

// maxFirstFrame bounds the wait for every participant's first video frame
// before measuring.
const maxFirstFrame = 15 * time.Second

// allSeeVideo reports whether every participant that joined has received
// a keyframe of the video it will ask for: of a camera or a screen, and of
// a screen if another participant of its class shares one. What it will
// ask for follows from the class's make-up, not from the tracks it has
// been told of: on a loaded machine that message can come after the
// others have seen video.
func allSeeVideo(peers []*roomPeer) bool {
	for _, p := range peers {
		p.mu.Lock()
		joined := !p.joinedAt.IsZero() && p.joinErr == nil
		p.mu.Unlock()
		if !joined {
			continue
		}
		video, screen := p.expects()
		if video && p.firstFrame.Load() == 0 || screen && p.screenFrame.Load() == 0 {
			return false
		}
	}
	return true
}

// expects reports whether the participant will ask for a video of someone
// else in its class (a camera tile or a screen) and for a screen.
func (p *roomPeer) expects() (video, screen bool) {
	o := p.t.opt
	cams, screens := o.cameras, o.screens
	if p.cam {
		cams--
	}
	if p.scr {
		screens--
	}
	return screens > 0 || (cams > 0 && o.tiles > 0), screens > 0
}

func (a *peerTotals) add(b peerTotals) {
	a.packets += b.packets
	a.bytes += b.bytes
	a.video += b.video
	a.audio += b.audio
	a.expected += b.expected
	a.got += b.got
	a.sentPkts += b.sentPkts
	a.sentBy += b.sentBy
	for i := range a.layerBytes {
		a.layerBytes[i] += b.layerBytes[i]
		a.sentLayer[i] += b.sentLayer[i]
	}
}

func (a peerTotals) sub(b peerTotals) peerTotals {
	d := peerTotals{
		packets: a.packets - b.packets, bytes: a.bytes - b.bytes,
		video: a.video - b.video, audio: a.audio - b.audio,
		expected: a.expected - b.expected, got: a.got - b.got,
		sentPkts: a.sentPkts - b.sentPkts, sentBy: a.sentBy - b.sentBy,
	}
	for i := range a.layerBytes {
		d.layerBytes[i] = a.layerBytes[i] - b.layerBytes[i]
		d.sentLayer[i] = a.sentLayer[i] - b.sentLayer[i]
	}
	return d
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// roomTokens returns a join token for every participant index.
func roomTokens(ctx context.Context, o roomOptions) ([]string, error) {
	n := o.classes * o.participants
	if o.tokenKey != "" {
		users, err := readLines(o.usersFile)
		if err != nil {
			return nil, usagef("loadtest room: --users: %v", err)
		}
		if len(users) < n {
			return nil, usagef("loadtest room: --users lists %d user IDs, %d participants need one each", len(users), n)
		}
		signer, err := jointoken.NewSigner(deriveKey(o.tokenKey, "join"))
		if err != nil {
			return nil, err
		}
		now := time.Now()
		run := strings.ToLower(rand.Text()[:8])
		tokens := make([]string, n)
		for i := range tokens {
			tokens[i], err = signer.Sign(jointoken.Claims{
				ClassID: o.classIDs[i/o.participants], UserID: users[i], Name: fmt.Sprintf("Load %d", i),
				Role: jointoken.RoleAttendee, Service: "CHIME", ID: fmt.Sprintf("load-%s-%d", run, i),
				IssuedAt: now, ExpiresAt: now.Add(time.Hour),
			})
			if err != nil {
				return nil, err
			}
		}
		return tokens, nil
	}

	hc := &http.Client{Timeout: 30 * time.Second}
	classIDs := o.classIDs
	run := strings.ToLower(rand.Text()[:8])
	if len(classIDs) == 0 {
		admin := client.New(o.url, client.WithHTTPClient(hc))
		if _, err := admin.Login(ctx, o.adminEmail, o.adminPassword); err != nil {
			return nil, fmt.Errorf("admin sign-in: %w", err)
		}
		start := time.Now().Truncate(time.Minute)
		for i := range o.classes {
			c, err := admin.CreateLiveClass(ctx, client.CreateLiveClassInput{
				Title:     fmt.Sprintf("[Load test %s] room %d", run, i+1),
				StartTime: start, EndTime: start.Add(2 * time.Hour), AWSService: "CHIME",
				RequiresEnrollment: true, AccessLevel: "STUDENT", MaxParticipants: o.participants,
				Category: "Load test", Level: "BEGINNER", IsFree: true, Tags: []string{"loadtest"},
			})
			if err != nil {
				return nil, fmt.Errorf("create class: %w", err)
			}
			classIDs = append(classIDs, c.ID)
		}
	}
	tokens := make([]string, n)
	password := rand.Text()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range tokens {
		if i%o.shards != o.shard {
			continue
		}
		g.Go(func() error {
			email := fmt.Sprintf("room%d-%s@loadtest.liveclass.local", i, run)
			c := client.New(o.url, client.WithHTTPClient(hc))
			if _, err := c.Signup(gctx, email, password, fmt.Sprintf("Load student %d", i)); err != nil {
				return fmt.Errorf("sign-up of %s: %w", email, err)
			}
			class := classIDs[i/o.participants]
			if _, err := c.Enroll(gctx, class); err != nil {
				return fmt.Errorf("enroll %s: %w", email, err)
			}
			tok, err := c.GenerateLiveClassToken(gctx, class)
			if err != nil {
				return fmt.Errorf("join token of %s: %w", email, err)
			}
			tokens[i] = tok.Token
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return tokens, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" && !strings.HasPrefix(s, "#") {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

// procMem is a process's resident memory.
type procMem struct{ rss, hwm int64 } // bytes

// procMemOf reads VmRSS and VmHWM of each process from /proc.
func procMemOf(pids []int) []procMem {
	out := make([]procMem, len(pids))
	for i, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			f := strings.Fields(v)
			if len(f) == 0 {
				continue
			}
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			switch k {
			case "VmRSS":
				out[i].rss = kb << 10
			case "VmHWM":
				out[i].hwm = kb << 10
			}
		}
	}
	return out
}

func histPercentile(h []uint64, p float64) time.Duration {
	var total uint64
	for _, v := range h {
		total += v
	}
	if total == 0 {
		return 0
	}
	want := uint64(float64(total)*p + 0.999999)
	var acc uint64
	for i, v := range h {
		acc += v
		if acc >= max(want, 1) {
			return bucketDelay(i)
		}
	}
	return bucketDelay(len(h) - 1)
}

func (r *roomReport) print(w io.Writer) {
	o := r.opt
	fmt.Fprintf(w, "room load test: %d class(es) × %d participants (%d cameras with 3 simulcast layers, %d screen share(s), %d microphones of which %d speak); each views %d camera tiles of %dx%d",
		o.classes, o.participants, o.cameras, o.screens, o.mics, o.speakers, o.tiles, o.tileW, o.tileH)
	if o.screens > 0 {
		fmt.Fprintf(w, " and the screen at %dx%d", o.screenW, o.screenH)
	}
	fmt.Fprintln(w)
	if o.shards > 1 {
		fmt.Fprintf(w, "shard %d/%d of the participants\n", o.shard, o.shards)
	}
	slices.Sort(r.joinLat)
	fmt.Fprintf(w, "joins: %d ok, %d failed, over %.1fs at %.1f/s; join → joined p50 %s p95 %s\n",
		r.joinsOK, r.joinsFail, r.rampTime.Seconds(), o.joinRate/float64(o.shards),
		fmtDur(percentile(r.joinLat, 0.5)), fmtDur(percentile(r.joinLat, 0.95)))
	for _, k := range sortedKeys(r.joinErrs) {
		fmt.Fprintf(w, "  join error %s: %d\n", k, r.joinErrs[k])
	}
	slices.Sort(r.ttff)
	if len(r.ttff) > 0 {
		fmt.Fprintf(w, "time to first video frame (first keyframe on the subscriber connection, from the join or the first video listed): p50 %s p95 %s max %s (%d participants",
			fmtDur(percentile(r.ttff, 0.5)), fmtDur(percentile(r.ttff, 0.95)), fmtDur(r.ttff[len(r.ttff)-1]), len(r.ttff))
		if r.noFrame > 0 {
			fmt.Fprintf(w, "; %d joined but saw no keyframe", r.noFrame)
		}
		fmt.Fprintln(w, ")")
	} else {
		fmt.Fprintf(w, "time to first video frame: no participant received a keyframe (%d joined)\n", r.joinsOK)
	}
	d, secs := r.delta, r.elapsed.Seconds()
	mbps := func(bytes uint64) float64 { return float64(bytes) * 8 / secs / 1e6 }
	fmt.Fprintf(w, "measured %.1fs, from %s after every participant saw video (%.1fs after the ramp):\n", secs, o.settle, r.framesWait.Seconds())
	fmt.Fprintf(w, "  received (forwarded by the server): %.0f packets/s (video %.0f, audio %.0f), %.2f Mbit/s of payload\n",
		float64(d.packets)/secs, float64(d.video)/secs, float64(d.audio)/secs, mbps(d.bytes))
	fmt.Fprintf(w, "  published by this tester: %.0f packets/s, %.2f Mbit/s of payload\n", float64(d.sentPkts)/secs, mbps(d.sentBy))
	lost := int64(d.expected) - int64(d.got)
	lossPct := 0.0
	if d.expected > 0 {
		lossPct = 100 * float64(max(lost, 0)) / float64(d.expected)
	}
	fmt.Fprintf(w, "  loss (sequence gaps at the receivers): %.3f%% (%d of %d)\n", lossPct, max(lost, 0), d.expected)
	// Bitrate held: per layer, the mean received by one viewer against what
	// one publisher sent of that layer.
	pubs := [4]int{o.cameras * o.classes, o.cameras * o.classes, o.cameras * o.classes, o.screens * o.classes}
	names := [4]string{"camera " + ridNames[0], "camera " + ridNames[1], "camera " + ridNames[2], "screen"}
	for i := range 4 {
		if d.layerBytes[i] == 0 || pubs[i] == 0 || d.sentLayer[i] == 0 {
			continue
		}
		perPub := float64(d.sentLayer[i]) / float64(pubs[i]) / float64(o.shards)
		// Viewers of a layer: received bytes over what one publisher sent.
		viewers := float64(d.layerBytes[i]) / perPub
		fmt.Fprintf(w, "  %-9s published %.0f kbit/s per track; received as %.1f full-rate streams\n",
			names[i], perPub*8/secs/1000, viewers)
	}
	if r.wantCams+r.wantScreens > 0 {
		// Full bitrate: every tile asked for arrives as a whole stream of
		// the layer that fits it (the lowest, for a 320×180 tile) and
		// every screen share whole.
		var got float64
		for i := range 4 {
			if pubs[i] > 0 && d.sentLayer[i] > 0 {
				got += float64(d.layerBytes[i]) / (float64(d.sentLayer[i]) / float64(pubs[i]) / float64(o.shards))
			}
		}
		fmt.Fprintf(w, "  bitrate held: %.1f of %d streams asked for (%.1f%%)\n",
			got, r.wantCams+r.wantScreens, 100*got/float64(r.wantCams+r.wantScreens))
	}
	for h := range 2 {
		fmt.Fprintf(w, "  one-way delay, %s half: p50 %s p95 %s p99 %s\n", [2]string{"first", "second"}[h],
			fmtDur(histPercentile(r.delayHalf[h], 0.5)), fmtDur(histPercentile(r.delayHalf[h], 0.95)), fmtDur(histPercentile(r.delayHalf[h], 0.99)))
	}
	fmt.Fprintf(w, "  keyframe requests (PLI/FIR) received by publishers: %d\n", r.plis)
	for _, k := range sortedKeys(r.protoErrs) {
		fmt.Fprintf(w, "  protocol error %s: %d\n", k, r.protoErrs[k])
	}
	fmt.Fprintf(w, "tester CPU: %.2fs over %.1fs (%.0f%% of one core), %.1fµs per packet received or sent\n",
		r.testerCPU.Seconds(), secs, 100*r.testerCPU.Seconds()/secs,
		float64(r.testerCPU.Microseconds())/float64(max(d.packets+d.sentPkts, 1)))
	for i, c := range r.serverCPU {
		fmt.Fprintf(w, "server pid %d CPU: %.2fs over %.1fs (%.1f%% of one core), %.2fµs per packet received by a subscriber",
			o.serverPIDs[i], c.Seconds(), secs, 100*c.Seconds()/secs, float64(c.Nanoseconds())/1000/float64(max(d.packets, 1)))
		m, m0 := r.serverRSS[i], r.serverRSSBefore[i]
		fmt.Fprintf(w, "; memory RSS %.1f MB (%.1f MB before the ramp, %.2f MB per participant), peak %.1f MB\n",
			float64(m.rss)/1e6, float64(m0.rss)/1e6, float64(m.rss-m0.rss)/1e6/float64(max(r.joinsOK, 1)), float64(m.hwm)/1e6)
	}
}
