package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveclass/liveclass/client"
	"github.com/liveclass/liveclass/client/rtc"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

const loadBroadcastUsage = `Usage: liveclass loadtest broadcast [flags]

Publishes a synthetic camera (VP8 in three simulcast layers, 180p, 360p and
720p at 150 kbit/s, 500 kbit/s and 1.5 Mbit/s) and Opus through WHIP
(POST /whip/{class}), then joins --viewers WHEP viewers (POST
/whep/{class}) at --join-rate, each a Pion PeerConnection that receives
the video at the layer the server chooses for it and the audio, and sends
receiver reports and NACKs as a browser does. After the ramp and --settle
it measures for --duration and reports joins, time to first frame, packets
received per second, loss, how many viewers received the 720p layer at
its full bitrate, one-way delay from the publisher's send to the viewer's
receive (first half against second half of the window), its own CPU, and
with --server-pid the server's CPU and memory.

Without --class it signs in as the admin and creates an IVS class that
starts now; the publisher uses a host join token of it (as the presenter
page does) or --stream-key, and the viewers a join token (--token, or
the admin's). With --publish=false it only joins viewers to a broadcast
another tester publishes, to spread viewers over several processes.`

// bcastOptions are the flags of loadtest broadcast.
type bcastOptions struct {
	url                       string
	class                     string
	streamKey, token          string
	publish                   bool
	leaveAfterFrame           bool
	viewers                   int
	joinRate                  float64
	settle, duration          time.Duration
	adminEmail, adminPassword string
	serverPIDs                []int
}

func loadBroadcastCmd(ctx context.Context, e Env, args []string) error {
	fs := newFlagSet("loadtest broadcast", "", loadBroadcastUsage)
	var o bcastOptions
	var serverPIDs, adminPasswordFile string
	fs.StringVar(&o.url, "url", "http://localhost:8080", "base URL of the server")
	fs.StringVar(&o.class, "class", "", "ID of an existing IVS class (default: create one as the admin)")
	fs.StringVar(&o.streamKey, "stream-key", "", "publish with this stream key instead of a host join token")
	fs.StringVar(&o.token, "token", "", "join token for the publisher (a host's) and the viewers, with --class")
	fs.BoolVar(&o.publish, "publish", true, "publish the stream (false: only join viewers)")
	fs.IntVar(&o.viewers, "viewers", 100, "WHEP viewers to join")
	fs.BoolVar(&o.leaveAfterFrame, "leave-after-frame", false, "each viewer leaves once its first frame came: measure joins and time to first frame alone, at a join rate the tester could not sustain with every viewer receiving")
	fs.Float64Var(&o.joinRate, "join-rate", 50, "viewer joins per second")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "wait after the ramp before measuring")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long to measure")
	fs.StringVar(&o.adminEmail, "admin-email", "admin@localhost", "admin account that creates the class")
	fs.StringVar(&adminPasswordFile, "admin-password-file", "", "file holding the admin's password (or $LIVECLASS_ADMIN_PASSWORD)")
	fs.StringVar(&serverPIDs, "server-pid", "", "comma-separated process IDs of the server on this machine, to report its CPU and memory")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	for _, f := range splitList(serverPIDs) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return usagef("loadtest broadcast: --server-pid: %q is not a process ID", f)
		}
		o.serverPIDs = append(o.serverPIDs, pid)
	}
	switch {
	case o.viewers < 0 || o.joinRate <= 0 || o.duration <= 0 || o.settle < 0:
		return usagef("loadtest broadcast: --viewers ≥ 0, --join-rate > 0, --duration > 0 and --settle ≥ 0")
	case o.class != "" && o.token == "":
		return usagef("loadtest broadcast: --class needs --token")
	case o.class == "" && !o.publish:
		return usagef("loadtest broadcast: --publish=false needs --class and --token of the broadcast to view")
	}
	if o.class == "" {
		o.adminPassword = lookupEnv(e.Environ, "LIVECLASS_ADMIN_PASSWORD")
		if adminPasswordFile != "" {
			var err error
			if o.adminPassword, err = readSecretFile(adminPasswordFile); err != nil {
				return usagef("loadtest broadcast: --admin-password-file: %v", err)
			}
		}
		if o.adminPassword == "" {
			return usagef("loadtest broadcast: without --class the admin's password is needed: --admin-password-file or $LIVECLASS_ADMIN_PASSWORD")
		}
	}
	rep, err := runBroadcastTest(ctx, o)
	if err != nil {
		return err
	}
	rep.print(e.Stdout)
	return nil
}

// bcastTest is one run of the broadcast load test.
type bcastTest struct {
	opt            bcastOptions
	base           string
	media          roomMedia
	pubAPI, subAPI *webrtc.API
	hc             *http.Client
	phase          atomic.Int32 // 0 ramp, 1 first half, 2 second half, 3 done
	delay          [3][1500]atomic.Uint32
}

// bcastViewer is one WHEP viewer.
type bcastViewer struct {
	t          *bcastTest
	pc         *webrtc.PeerConnection
	start      time.Time
	joinErr    string
	joined     time.Duration // POST → connected
	firstFrame atomic.Int64  // ns after start of the first keyframe start; 0 before
	// Counters, written by the two read loops.
	packets, video, audio atomic.Uint64
	// seq follows the sequence numbers of the video [0] and the audio
	// [1]: the video is repaired by NACKs, the audio is not (Opus
	// carries FEC instead, as in a browser).
	seq      [2]*seqTrack
	topBytes atomic.Uint64 // payload bytes of the 720p layer
	wg       sync.WaitGroup
}

// bcastReport is what a run measured.
type bcastReport struct {
	opt                       bcastOptions
	window                    time.Duration
	joinsOK                   int
	joinErrs                  map[string]int
	joinP50, joinP95          time.Duration
	ttffP50, ttffP95, ttffMax time.Duration
	noFrame                   int
	pktsPerSec                float64
	videoPPS, audioPPS        float64       // per viewer that joined
	loss, audioLoss           float64       // fractions of the video's and the audio's packets sent in the window that never arrived
	repairWait                time.Duration // waited after the window for the video's repairs
	fullRate, onTop           int
	topKbps                   float64 // mean 720p payload bitrate per viewer that got it
	delay                     [3][1500]uint64
	plis                      uint64
	testerCPU                 time.Duration
	server0, server1          []time.Duration
	serverMem0, serverMem1    []procMem
	published                 bool
	joinsOnly                 bool // --leave-after-frame: window is the ramp
}

func runBroadcastTest(ctx context.Context, o bcastOptions) (*bcastReport, error) {
	base, err := url.Parse(strings.TrimRight(o.url, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, usagef("loadtest broadcast: --url %q is not an http(s) URL", o.url)
	}
	t := &bcastTest{opt: o, base: base.String(), media: defaultRoomMedia(), hc: &http.Client{Timeout: 30 * time.Second}}
	if t.pubAPI, t.subAPI, err = rtc.NewAPIs(rtc.APIOptions{LoopbackOnly: isLoopback(base.Hostname())}); err != nil {
		return nil, err
	}
	if o.class == "" {
		if t.opt.class, t.opt.token, err = broadcastClassAndToken(ctx, o, t.hc); err != nil {
			return nil, err
		}
	}
	o = t.opt
	rep := &bcastReport{opt: o, joinErrs: map[string]int{}, serverMem0: procMemOf(o.serverPIDs), published: o.publish}
	stop := make(chan struct{})
	var pub *bcastPublisher
	if o.publish {
		cred := o.token
		if o.streamKey != "" {
			cred = o.streamKey
		}
		if pub, err = t.startPublisher(ctx, cred, stop); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
		defer pub.close()
	}
	defer close(stop)

	viewers := make([]*bcastViewer, o.viewers)
	rampCPU0, rampSrv0, rampStart := cpuTime(), processTreeCPU(o.serverPIDs), time.Now()
	var jwg sync.WaitGroup
	gap := time.Duration(float64(time.Second) / o.joinRate)
	next := time.Now()
	for i := range viewers {
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(d):
			}
		}
		next = next.Add(gap)
		v := &bcastViewer{t: t, seq: [2]*seqTrack{newSeqTrack(), newSeqTrack()}}
		viewers[i] = v
		jwg.Go(func() { v.join(ctx) })
	}
	jwg.Wait()
	if o.leaveAfterFrame {
		rep.window = time.Since(rampStart)
		rep.testerCPU, rep.server0, rep.server1 = cpuTime()-rampCPU0, rampSrv0, processTreeCPU(o.serverPIDs)
		rep.serverMem1 = procMemOf(o.serverPIDs)
		rep.joinsOnly = true
		rep.fillJoins(viewers)
		return rep, nil
	}
	defer func() {
		var wg sync.WaitGroup
		for _, v := range viewers {
			wg.Go(v.close)
		}
		wg.Wait()
	}()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.settle):
	}

	var vid0, aud0 uint64
	kinds := func() (vid, aud uint64) {
		for _, v := range viewers {
			vid += v.video.Load()
			aud += v.audio.Load()
		}
		return
	}
	snap := func() (pk uint64, marks [][2]int64, top []uint64) {
		top = make([]uint64, len(viewers))
		marks = make([][2]int64, len(viewers))
		for i, v := range viewers {
			pk += v.packets.Load()
			for k, s := range v.seq {
				marks[i][k] = s.mark()
			}
			top[i] = v.topBytes.Load()
		}
		return
	}
	cpu0, srv0 := cpuTime(), processTreeCPU(o.serverPIDs)
	pk0, marks0, top0 := snap()
	vid0, aud0 = kinds()
	start := time.Now()
	t.phase.Store(1)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.duration / 2):
	}
	t.phase.Store(2)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.duration - o.duration/2):
	}
	t.phase.Store(3)
	rep.window = time.Since(start)
	rep.testerCPU, rep.server1 = cpuTime()-cpu0, processTreeCPU(o.serverPIDs)
	rep.server0 = srv0
	rep.serverMem1 = procMemOf(o.serverPIDs)
	pk1, marks1, top1 := snap()
	vid1, aud1 := kinds()
	rep.pktsPerSec = float64(pk1-pk0) / rep.window.Seconds()
	for p := range t.delay {
		for i := range t.delay[p] {
			rep.delay[p][i] = uint64(t.delay[p][i].Load())
		}
	}
	rep.loss, rep.audioLoss, rep.repairWait = windowLoss(ctx, viewers, marks0, marks1, repairGrace(histPercentile(rep.delay[2][:], 0.99)))
	full := float64(t.media.camera[len(t.media.camera)-1].bitrate) / 8 * rep.window.Seconds()
	var topSum float64
	rep.fillJoins(viewers)
	for i, v := range viewers {
		if v.joinErr != "" {
			continue
		}
		b := float64(top1[i] - top0[i])
		if b > 0 {
			rep.onTop++
			topSum += b
		}
		// Full bitrate: at least 90 % of the 720p layer's payload rate
		// (the publisher's pacing catches up late frames, so a healthy
		// path delivers all of it).
		if b >= 0.9*full {
			rep.fullRate++
		}
	}
	if rep.joinsOK > 0 {
		rep.videoPPS = float64(vid1-vid0) / rep.window.Seconds() / float64(rep.joinsOK)
		rep.audioPPS = float64(aud1-aud0) / rep.window.Seconds() / float64(rep.joinsOK)
	}
	if rep.onTop > 0 {
		rep.topKbps = topSum / float64(rep.onTop) * 8 / rep.window.Seconds() / 1000
	}
	if pub != nil {
		rep.plis = pub.p.t.plis.Load()
	}
	return rep, nil
}

// repairGrace returns how long to wait, after the window, for the repairs
// of its packets, given the one-way delay the media saw: a repair is a
// NACK interval (100 ms) and a round trip through the queues the media
// waits in, and may need a second NACK; at least 3 s, at most 15 s.
func repairGrace(delay time.Duration) time.Duration {
	return min(max(3*time.Second, 2*time.Second+4*delay), 15*time.Second)
}

// windowLoss returns the fractions of the video's and the audio's packets
// sent between marks0 and marks1 that never arrived, after waiting (at
// most grace, and no longer than needed) for the video's repairs, and how
// long it waited.
func windowLoss(ctx context.Context, viewers []*bcastViewer, marks0, marks1 [][2]int64, grace time.Duration) (video, audio float64, waited time.Duration) {
	var sent [2]uint64
	count := func() (lost [2]uint64) {
		for i, v := range viewers {
			for k, s := range v.seq {
				lo, hi := s.window(marks0[i][k], marks1[i][k])
				lost[k] += s.missingIn(lo, hi)
			}
		}
		return lost
	}
	for i, v := range viewers {
		for k, s := range v.seq {
			lo, hi := s.window(marks0[i][k], marks1[i][k])
			sent[k] += uint64(hi - lo)
		}
	}
	start := time.Now()
	lost := count()
	for lost[0] > 0 && time.Since(start) < grace && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond) // polling counts, not synchronising
		lost = count()
	}
	frac := func(k int) float64 {
		if sent[k] == 0 {
			return 0
		}
		return float64(lost[k]) / float64(sent[k])
	}
	return frac(0), frac(1), time.Since(start)
}

// fillJoins counts the joins and their times to first frame.
func (r *bcastReport) fillJoins(viewers []*bcastViewer) {
	var joinTimes, ttffs []time.Duration
	for _, v := range viewers {
		if v.joinErr != "" {
			r.joinErrs[v.joinErr]++
			continue
		}
		r.joinsOK++
		joinTimes = append(joinTimes, v.joined)
		if ff := v.firstFrame.Load(); ff > 0 {
			ttffs = append(ttffs, time.Duration(ff))
		} else {
			r.noFrame++
		}
	}
	slices.Sort(joinTimes)
	slices.Sort(ttffs)
	r.joinP50, r.joinP95 = percentile(joinTimes, 0.5), percentile(joinTimes, 0.95)
	r.ttffP50, r.ttffP95 = percentile(ttffs, 0.5), percentile(ttffs, 0.95)
	if len(ttffs) > 0 {
		r.ttffMax = ttffs[len(ttffs)-1]
	}
}

// broadcastClassAndToken creates an IVS class that starts now, as the
// admin, and returns it with the admin's (host) join token.
func broadcastClassAndToken(ctx context.Context, o bcastOptions, hc *http.Client) (class, token string, err error) {
	admin := client.New(o.url, client.WithHTTPClient(hc))
	if _, err := admin.Login(ctx, o.adminEmail, o.adminPassword); err != nil {
		return "", "", fmt.Errorf("admin sign-in: %w", err)
	}
	start := time.Now().Truncate(time.Minute)
	c, err := admin.CreateLiveClass(ctx, client.CreateLiveClassInput{
		Title:     fmt.Sprintf("[Load test %s] broadcast", strings.ToLower(rand.Text()[:8])),
		StartTime: start, EndTime: start.Add(2 * time.Hour), AWSService: "IVS",
		AccessLevel: "STUDENT", MaxParticipants: max(o.viewers, 1),
		Category: "Load test", Level: "BEGINNER", IsFree: true, Tags: []string{"loadtest"},
	})
	if err != nil {
		return "", "", fmt.Errorf("create class: %w", err)
	}
	tok, err := admin.GenerateLiveClassToken(ctx, c.ID)
	if err != nil {
		return "", "", fmt.Errorf("join token: %w", err)
	}
	return c.ID, tok.Token, nil
}

// exchange POSTs an SDP offer to a WHIP or WHEP endpoint and returns the
// answer; a refusal is an error naming the status and the server's code.
func (t *bcastTest) exchange(ctx context.Context, path, cred, offer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+path+"/"+url.PathEscape(t.opt.class), strings.NewReader(offer))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := t.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		code := ""
		if i := bytes.Index(body, []byte(`"code":"`)); i >= 0 {
			rest := body[i+8:]
			if j := bytes.IndexByte(rest, '"'); j >= 0 {
				code = " " + string(rest[:j])
			}
		}
		return "", fmt.Errorf("HTTP %d%s", resp.StatusCode, code)
	}
	return string(body), nil
}

// negotiate makes the offer of pc with all its candidates, sends it and
// applies the answer.
func (t *bcastTest) negotiate(ctx context.Context, pc *webrtc.PeerConnection, path, cred string) error {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	answer, err := t.exchange(ctx, path, cred, pc.LocalDescription().SDP)
	if err != nil {
		return err
	}
	return pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer})
}

// bcastPublisher is the test's WHIP publisher: the room tester's camera
// (three VP8 layers, stamped payloads, a keyframe every 3 s and on each
// PLI) and a speaking microphone.
type bcastPublisher struct {
	p  *roomPeer
	pc *webrtc.PeerConnection
}

func (t *bcastTest) startPublisher(ctx context.Context, cred string, stop chan struct{}) (*bcastPublisher, error) {
	// The room tester's participant does the pacing and stamping; here it
	// publishes over WHIP instead of the room protocol.
	rt := &roomTest{media: t.media}
	p := &roomPeer{t: rt, index: 1, cam: true, mic: true, speak: true, stop: stop, delay: &delayHist{}}
	pc, err := t.pubAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	var layers []*webrtc.TrackLocalStaticRTP
	for _, l := range t.media.camera {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "camera", "load", webrtc.WithRTPStreamID(l.rid))
		if err != nil {
			return nil, err
		}
		layers = append(layers, tr)
	}
	cam, err := pc.AddTrack(layers[0])
	if err != nil {
		return nil, err
	}
	for _, tr := range layers[1:] {
		if err := cam.AddEncoding(tr); err != nil {
			return nil, err
		}
	}
	mic, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "mic", "load")
	if err != nil {
		return nil, err
	}
	micSender, err := pc.AddTrack(mic)
	if err != nil {
		return nil, err
	}
	bp := &bcastPublisher{p: p, pc: pc}
	if err := t.negotiate(ctx, pc, "/whip", cred); err != nil {
		_ = pc.Close()
		return nil, err
	}
	camMid, micMid := "", ""
	for _, tr := range pc.GetTransceivers() {
		switch tr.Sender() {
		case cam:
			camMid = tr.Mid()
		case micSender:
			micMid = tr.Mid()
		}
	}
	for i, l := range t.media.camera {
		p.wantKey[i].Store(true)
		p.wg.Go(func() { p.readPLI(cam, l.rid, i) })
	}
	p.wg.Go(func() { p.sendCamera(cam, layers, camMid) })
	p.wg.Go(func() { p.drainRTCP(micSender) })
	p.wg.Go(func() { p.sendMic(micSender, mic, micMid) })
	return bp, nil
}

func (bp *bcastPublisher) close() {
	_ = bp.pc.Close()
	bp.p.wg.Wait()
}

// join connects the viewer; an error is recorded, not returned.
func (v *bcastViewer) join(ctx context.Context) {
	t := v.t
	v.start = time.Now()
	pc, err := t.subAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		v.joinErr = firstWords(err.Error())
		return
	}
	v.pc = pc
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			v.joinErr = firstWords(err.Error())
			return
		}
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.wg.Add(1)
		defer v.wg.Done()
		v.read(remote)
	})
	if err := t.negotiate(ctx, pc, "/whep", t.opt.token); err != nil {
		v.joinErr = firstWords(err.Error())
		return
	}
	select {
	case <-connected:
		v.joined = time.Since(v.start)
	case <-time.After(15 * time.Second):
		v.joinErr = "not connected within 15 s"
		return
	case <-ctx.Done():
		v.joinErr = "cancelled"
		return
	}
	if t.opt.leaveAfterFrame {
		deadline := time.Now().Add(10 * time.Second)
		for v.firstFrame.Load() == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond) // polling a counter, not synchronising
		}
		v.close()
	}
}

// read counts one received stream: a header parse, the stamp, and
// sequence-number accounting; nothing is decoded.
func (v *bcastViewer) read(remote *webrtc.TrackRemote) {
	t := v.t
	video := remote.Kind() == webrtc.RTPCodecTypeVideo
	seq := v.seq[1]
	if video {
		seq = v.seq[0]
	}
	top := byte(len(t.media.camera) - 1)
	buf := make([]byte, 1500)
	var h rtp.Header
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		now := time.Now()
		hn, err := h.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		payload := buf[hn:n]
		v.packets.Add(1)
		if video {
			v.video.Add(1)
		} else {
			v.audio.Add(1)
		}
		seq.add(h.SequenceNumber)
		if len(payload) >= stampLen {
			s := payload[len(payload)-stampLen:]
			if s[0] == stampMagic {
				sent := int64(binary.BigEndian.Uint64(s[2:]))
				i := delayBucket(now.UnixNano() - sent)
				if ph := t.phase.Load(); ph == 1 || ph == 2 {
					t.delay[ph][i].Add(1)
				}
				if video && s[1] == top {
					v.topBytes.Add(uint64(len(payload)))
				}
			}
		}
		if video && v.firstFrame.Load() == 0 && len(payload) > 5 && payload[0]&0x10 != 0 && payload[0]&0x07 == 0 {
			// A keyframe start: S set, partition 0, and the VP8 frame
			// tag's P bit clear (after the 4-byte descriptor the
			// publisher writes).
			if payload[4]&0x01 == 0 {
				v.firstFrame.Store(int64(now.Sub(v.start)))
			}
		}
	}
}

func (v *bcastViewer) close() {
	if v == nil || v.pc == nil {
		return
	}
	_ = v.pc.Close()
	v.wg.Wait()
}

func (r *bcastReport) print(w io.Writer) {
	o := r.opt
	fmt.Fprintf(w, "broadcast load test: class %s, %d WHEP viewers at %.0f/s", o.class, o.viewers, o.joinRate)
	if r.published {
		fmt.Fprintf(w, ", publishing VP8 180p/360p/720p simulcast (150/500/1500 kbit/s) + Opus over WHIP")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "joins: %d ok, %d failed", r.joinsOK, o.viewers-r.joinsOK)
	for msg, n := range r.joinErrs {
		fmt.Fprintf(w, " [%d× %s]", n, msg)
	}
	fmt.Fprintf(w, "; POST → connected p50 %v, p95 %v\n", r.joinP50.Round(time.Millisecond), r.joinP95.Round(time.Millisecond))
	fmt.Fprintf(w, "time to first frame (POST → first keyframe start): p50 %v, p95 %v, max %v; %d viewers without a frame\n",
		r.ttffP50.Round(time.Millisecond), r.ttffP95.Round(time.Millisecond), r.ttffMax.Round(time.Millisecond), r.noFrame)
	if r.joinsOnly {
		fmt.Fprintf(w, "ramp of %v (viewers left after their first frame): tester CPU %.0f %% of a core\n",
			r.window.Round(time.Millisecond), 100*r.testerCPU.Seconds()/r.window.Seconds())
		for i, pid := range o.serverPIDs {
			if i < len(r.server0) && i < len(r.server1) {
				fmt.Fprintf(w, "server %d: CPU %.1f %% of a core over the ramp; RSS %.0f MB at the end\n",
					pid, 100*(r.server1[i]-r.server0[i]).Seconds()/r.window.Seconds(), float64(r.serverMem1[i].rss)/(1<<20))
			}
		}
		return
	}
	fmt.Fprintf(w, "window %v: %.0f packets/s received (per viewer: %.0f video, %.0f audio)\n",
		r.window.Round(time.Millisecond), r.pktsPerSec, r.videoPPS, r.audioPPS)
	fmt.Fprintf(w, "loss of the packets sent in the window: video %.3f %% never arrived (%v after the window for NACK repairs), audio %.3f %% (not repaired: Opus carries FEC)\n",
		100*r.loss, r.repairWait.Round(time.Millisecond), 100*r.audioLoss)
	fmt.Fprintf(w, "720p layer: %d viewers received it, %d at ≥ 90 %% of its bitrate; mean %.0f kbit/s of payload per viewer receiving it\n",
		r.onTop, r.fullRate, r.topKbps)
	for ph := 1; ph <= 2; ph++ {
		h := r.delay[ph][:]
		fmt.Fprintf(w, "one-way delay publisher send → viewer receive, %s half: p50 %v, p95 %v, p99 %v\n",
			map[int]string{1: "first", 2: "second"}[ph], histPercentile(h, 0.5), histPercentile(h, 0.95), histPercentile(h, 0.99))
	}
	if r.published {
		fmt.Fprintf(w, "keyframe requests to the publisher: %d\n", r.plis)
	}
	fmt.Fprintf(w, "tester CPU: %.0f %% of a core\n", 100*r.testerCPU.Seconds()/r.window.Seconds())
	for i, pid := range o.serverPIDs {
		if i >= len(r.server0) || i >= len(r.server1) {
			continue
		}
		cpu := r.server1[i] - r.server0[i]
		per := 0.0
		if r.pktsPerSec > 0 {
			per = cpu.Seconds() / (r.pktsPerSec * r.window.Seconds()) * 1e6
		}
		fmt.Fprintf(w, "server %d: CPU %.1f %% of a core (%.1f µs per packet received by the viewers); RSS %.0f → %.0f MB (peak %.0f MB)",
			pid, 100*cpu.Seconds()/r.window.Seconds(), per,
			float64(r.serverMem0[i].rss)/(1<<20), float64(r.serverMem1[i].rss)/(1<<20), float64(r.serverMem1[i].hwm)/(1<<20))
		if r.joinsOK > 0 {
			fmt.Fprintf(w, ", %.2f MB per viewer", float64(r.serverMem1[i].rss-r.serverMem0[i].rss)/(1<<20)/float64(r.joinsOK))
		}
		fmt.Fprintln(w)
	}
}
