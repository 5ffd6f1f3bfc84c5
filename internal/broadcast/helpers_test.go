package broadcast_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/liveclass/liveclass/internal/audience"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/broadcast"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
)

// env is a broadcast service over a real SQLite store, the real classes
// rules and join tokens, and a real media server, served over HTTP.
type env struct {
	t       *testing.T
	st      store.Store
	rules   *classes.Service
	signer  *jointoken.Signer
	media   *sfu.Server
	svc     *broadcast.Service
	srv     *httptest.Server
	aud     *audienceLog
	changes *changeLog
	pkgs    *packagers
	api     *webrtc.API
	now     atomic.Pointer[time.Time] // the service's clock; real time when nil

	mentor, student, admin auth.Actor
}

type envOptions struct {
	maxViewers int
	turn       bool // start the media server's embedded TURN server
}

func newEnv(t *testing.T, opt envOptions) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "liveclass.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// Counted with the store open: it closes after the check.
	before := runtime.NumGoroutine()
	signer, err := jointoken.NewSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, signer: signer, aud: &audienceLog{}, changes: &changeLog{}, pkgs: &packagers{}}
	e.rules = classes.New(st, nil, signer, classes.Options{PublicURL: "http://liveclass.test"})
	if opt.maxViewers == 0 {
		opt.maxViewers = 10
	}
	e.svc, err = broadcast.New(broadcast.Options{
		Store: st, Keys: e.rules, Tokens: signer, Audience: e.aud,
		OnClassChange: func(_ context.Context, id store.ClassID) { e.changes.add(id) },
		Logger:        log,
		Now: func() time.Time {
			if n := e.now.Load(); n != nil {
				return *n
			}
			return time.Now()
		},
		MaxWebRTCViewers: opt.maxViewers,
		EndGrace:         time.Minute,
		ConnectWindow:    2 * time.Second,
		HealthInterval:   100 * time.Millisecond,
		SweepInterval:    100 * time.Millisecond,
		StartHLS:         e.pkgs.start,
		// Renewed every hour, as the real signer's URLs are.
		HLSURL: func(class store.ClassID, now time.Time) string {
			return fmt.Sprintf("/hls/%s/index.m3u8?exp=%d&sig=x", class, now.Truncate(time.Hour).Add(2*time.Hour).Unix())
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mcfg := sfu.Config{IncludeLoopback: true, Events: e.svc.Events(nil), Logger: log}
	if opt.turn {
		mcfg.TURN = &sfu.TURNConfig{Username: "relay", Password: "s3cret"}
	}
	e.media, err = sfu.New(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc.SetMedia(broadcast.SFU(e.media))
	e.srv = httptest.NewServer(e.svc.Handler())
	t.Cleanup(func() {
		e.srv.Close()
		e.svc.Close()
		if err := e.media.Close(); err != nil {
			t.Errorf("close media: %v", err)
		}
		waitGoroutines(t, before)
	})
	e.api = clientAPI(t)
	mk := func(name string, role store.Role) auth.Actor {
		u := store.User{Email: name + "@example.com", Name: name, Role: role}
		if err := st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		return auth.Actor{UserID: u.ID, Role: role, Name: name}
	}
	e.mentor, e.student, e.admin = mk("mentor", store.RoleMentor), mk("student", store.RoleStudent), mk("admin", store.RoleAdmin)
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// class creates a class of the mentor that opens now, the student
// enrolled in it.
func (e *env) class(service store.Service) store.LiveClass {
	e.t.Helper()
	ctx := context.Background()
	start := time.Now().Add(5 * time.Minute)
	seats := 1000
	if service == store.ServiceChime {
		seats = 50
	}
	c, err := e.rules.CreateClass(ctx, e.mentor, classes.ClassInput{
		Title: "Broadcast", StartTime: start, EndTime: start.Add(time.Hour), Service: service,
		RequiresEnrollment: true, AccessLevel: store.RoleStudent, MaxParticipants: seats,
		Category: "go", Level: store.LevelBeginner, IsFree: true,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.rules.Enroll(ctx, e.student, c.ID, ""); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) key(c store.LiveClass) classes.NewStreamKey {
	e.t.Helper()
	k, err := e.rules.CreateStreamKey(context.Background(), e.mentor, c.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

func (e *env) token(a auth.Actor, c store.LiveClass) string {
	e.t.Helper()
	g, err := e.rules.GenerateJoinToken(context.Background(), a, c.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return g.Token
}

func (e *env) status(id store.ClassID) store.Status {
	e.t.Helper()
	c, err := e.st.ClassByID(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Status
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGoroutines fails the test if goroutines outlive the service, the
// media server and the clients (which close before, in cleanup order).
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// audienceLog records what the service tells the audience.
type audienceLog struct {
	mu     sync.Mutex
	states map[store.ClassID][]audience.StreamState
	health map[store.ClassID][]audience.Health
}

func (a *audienceLog) SetStream(class store.ClassID, s audience.StreamState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.states == nil {
		a.states = map[store.ClassID][]audience.StreamState{}
	}
	a.states[class] = append(a.states[class], s)
}

func (a *audienceLog) SetHealth(class store.ClassID, h audience.Health) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.health == nil {
		a.health = map[store.ClassID][]audience.Health{}
	}
	a.health[class] = append(a.health[class], h)
}

// state is the last stream state of the class ("" for none).
func (a *audienceLog) state(class store.ClassID) audience.StreamState {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.states[class]
	if len(s) == 0 {
		return audience.StreamState{}
	}
	return s[len(s)-1]
}

// sequence is the class's states, repeats folded.
func (a *audienceLog) sequence(class store.ClassID) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, s := range a.states[class] {
		if len(out) == 0 || out[len(out)-1] != s.State {
			out = append(out, s.State)
		}
	}
	return out
}

func (a *audienceLog) lastHealth(class store.ClassID) (audience.Health, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.health[class]
	if len(h) == 0 {
		return audience.Health{}, false
	}
	return h[len(h)-1], true
}

func (a *audienceLog) healthCount(class store.ClassID) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.health[class])
}

// changeLog records OnClassChange.
type changeLog struct {
	mu  sync.Mutex
	ids []store.ClassID
}

func (c *changeLog) add(id store.ClassID) {
	c.mu.Lock()
	c.ids = append(c.ids, id)
	c.mu.Unlock()
}

func (c *changeLog) count(id store.ClassID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, x := range c.ids {
		if x == id {
			n++
		}
	}
	return n
}

// packagers records the HLS packagers the service starts: which codec,
// how many packets each got, whether it was closed. The real packager
// (ffmpeg) is tested in internal/hls and end to end in internal/cli; here
// the wiring is what is checked.
type packagers struct {
	mu  sync.Mutex
	all []*packager
}

type packager struct {
	class         store.ClassID
	codec         string
	video, audio  atomic.Int64
	closed        atomic.Bool
	writesOnClose atomic.Int64
}

func (p *packagers) start(class store.ClassID, codec string, _ func()) (broadcast.Packager, error) {
	pk := &packager{class: class, codec: codec}
	p.mu.Lock()
	p.all = append(p.all, pk)
	p.mu.Unlock()
	return pk, nil
}

func (p *packagers) list() []*packager {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*packager(nil), p.all...)
}

func (p *packager) WriteVideo(b []byte) error {
	if p.closed.Load() {
		p.writesOnClose.Add(1)
		return errors.New("closed")
	}
	p.video.Add(1)
	return nil
}

func (p *packager) WriteAudio(b []byte) error {
	if p.closed.Load() {
		p.writesOnClose.Add(1)
		return errors.New("closed")
	}
	p.audio.Add(1)
	return nil
}

func (p *packager) Close() error {
	p.closed.Store(true)
	return nil
}

// clientAPI is the Pion API of the test publishers and viewers.
func clientAPI(t testing.TB) *webrtc.API {
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

// httpResult is an answer of the WHIP or WHEP endpoint.
type httpResult struct {
	status   int
	header   http.Header
	body     string
	code     string // error.code of a JSON error
	hls      string // hls of a FULL answer
	location string
}

// post sends an SDP offer (or any body) with a bearer credential.
func (e *env) post(path, bearer, contentType, body string) httpResult {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return e.send(req, bearer)
}

func (e *env) request(method, path, bearer string) httpResult {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.send(req, bearer)
}

func (e *env) send(req *http.Request, bearer string) httpResult {
	e.t.Helper()
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := httpResult{status: resp.StatusCode, header: resp.Header, body: string(b), location: resp.Header.Get("Location")}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var eb struct {
			Error struct{ Code, Message string }
			HLS   string
		}
		if err := json.Unmarshal(b, &eb); err != nil {
			e.t.Fatalf("decode %s: %v", b, err)
		}
		r.code, r.hls = eb.Error.Code, eb.HLS
	}
	return r
}

// peer is a test publisher or viewer: a Pion connection that did one
// offer/answer exchange with the endpoint.
type peer struct {
	t        testing.TB
	pc       *webrtc.PeerConnection
	location string
	bearer   string
	done     chan struct{}
	wg       sync.WaitGroup
	closed   sync.Once

	// publisher
	video    *webrtc.TrackLocalStaticSample
	audio    *webrtc.TrackLocalStaticSample
	keyframe atomic.Bool

	// viewer
	videoPkts, audioPkts atomic.Int64
	codec                atomic.Pointer[string]
}

// offer makes a complete offer (every candidate in it, as WHIP and WHEP
// clients without trickle send).
func (p *peer) offer() string {
	p.t.Helper()
	o, err := p.pc.CreateOffer(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(o); err != nil {
		p.t.Fatal(err)
	}
	<-gathered
	return p.pc.LocalDescription().SDP
}

func (p *peer) answer(sdp string) {
	p.t.Helper()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		p.t.Fatal(err)
	}
}

// newPublisher makes a publisher sending codec ("video/H264" as OBS,
// "video/VP8") and Opus, not yet connected.
func (e *env) newPublisher(codec string) *peer {
	e.t.Helper()
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		e.t.Fatal(err)
	}
	p := &peer{t: e.t, pc: pc, done: make(chan struct{})}
	if p.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: codec, ClockRate: 90000}, "video", "obs"); err != nil {
		e.t.Fatal(err)
	}
	if p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "obs"); err != nil {
		e.t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{p.video, p.audio} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			e.t.Fatal(err)
		}
	}
	e.t.Cleanup(p.close)
	return p
}

// publish posts the publisher's offer; on 201 it applies the answer and
// starts sending.
func (e *env) publish(p *peer, class store.ClassID, bearer string) httpResult {
	e.t.Helper()
	r := e.post(broadcast.WHIPPath+string(class), bearer, "application/sdp", p.offer())
	if r.status != http.StatusCreated {
		return r
	}
	p.location, p.bearer = r.location, bearer
	p.answer(r.body)
	p.keyframe.Store(true)
	for _, tr := range p.pc.GetTransceivers() {
		if s := tr.Sender(); s != nil && tr.Kind() == webrtc.RTPCodecTypeVideo {
			p.wg.Go(func() { p.readPLI(s) })
		}
	}
	p.wg.Go(p.sendVideo)
	p.wg.Go(p.sendAudio)
	return r
}

func (p *peer) readPLI(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pk := range pkts {
			switch pk.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.keyframe.Store(true)
			}
		}
	}
}

// sendVideo sends 30 synthetic frames a second, a keyframe first and on
// each keyframe request.
func (p *peer) sendVideo() {
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	h264 := p.video.Codec().MimeType == webrtc.MimeTypeH264
	for n := 0; ; n++ {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		key := p.keyframe.Swap(false)
		var frame []byte
		if h264 {
			frame = h264Frame(key, n)
		} else {
			frame = vp8Frame(key, n)
		}
		if err := p.video.WriteSample(media.Sample{Data: frame, Duration: time.Second / 30}); err != nil {
			return
		}
	}
}

func (p *peer) sendAudio() {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		if err := p.audio.WriteSample(media.Sample{Data: []byte{0xfc, 1, 2, 3}, Duration: 20 * time.Millisecond}); err != nil {
			return
		}
	}
}

// h264Frame is a synthetic Annex-B access unit: SPS, PPS and IDR for a
// keyframe, a non-IDR slice otherwise.
func h264Frame(key bool, n int) []byte {
	start := []byte{0, 0, 0, 1}
	var b []byte
	if key {
		b = append(b, start...)
		b = append(b, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8)
		b = append(b, start...)
		b = append(b, 0x68, 0xce, 0x3c, 0x80)
	}
	b = append(b, start...)
	nal, size := byte(0x41), 1200
	if key {
		nal, size = 0x65, 2500
	}
	b = append(b, nal)
	for i := range size {
		b = append(b, byte(n+i)|0x01)
	}
	return b
}

// vp8Frame is a synthetic VP8 frame; bit 0 of the first byte clear marks
// a keyframe, which is all the forwarding path reads.
func vp8Frame(key bool, n int) []byte {
	b := make([]byte, 1000)
	for i := range b {
		b[i] = byte(n+i) | 0x01
	}
	if key {
		b[0] = 0x10
	}
	return b
}

// stop DELETEs the publish or viewer session (its own bearer).
func (e *env) stop(p *peer) httpResult {
	e.t.Helper()
	return e.request(http.MethodDelete, p.location, p.bearer)
}

// close drops the connection without telling the server, as a crashed
// encoder or a lost network does.
func (p *peer) close() {
	p.closed.Do(func() {
		close(p.done)
		_ = p.pc.Close()
		p.wg.Wait()
	})
}

// newViewer makes a recvonly viewer with one audio and one video m-line.
func (e *env) newViewer() *peer {
	e.t.Helper()
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		e.t.Fatal(err)
	}
	p := &peer{t: e.t, pc: pc, done: make(chan struct{})}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			e.t.Fatal(err)
		}
	}
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.wg.Add(1)
		defer p.wg.Done()
		video := remote.Kind() == webrtc.RTPCodecTypeVideo
		buf := make([]byte, 1500)
		for {
			if _, _, err := remote.Read(buf); err != nil {
				return
			}
			if video {
				mime := remote.Codec().MimeType
				p.codec.Store(&mime)
				p.videoPkts.Add(1)
			} else {
				p.audioPkts.Add(1)
			}
		}
	})
	e.t.Cleanup(p.close)
	return p
}

// view posts the viewer's offer and applies the answer on 201.
func (e *env) view(p *peer, class store.ClassID, bearer string) httpResult {
	e.t.Helper()
	r := e.post(broadcast.WHEPPath+string(class), bearer, "application/sdp", p.offer())
	if r.status == http.StatusCreated {
		p.location, p.bearer = r.location, bearer
		p.answer(r.body)
	}
	return r
}

// mustStatus fails unless r has the status (and, when given, the code).
func mustStatus(t testing.TB, what string, r httpResult, status int, code string) {
	t.Helper()
	if r.status != status || (code != "" && r.code != code) {
		t.Fatalf("%s: got %d %s (%s), want %d %s", what, r.status, r.code, r.body, status, code)
	}
}
