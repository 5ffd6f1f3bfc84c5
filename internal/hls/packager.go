package hls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
)

// The codecs a Packager takes, as the SFU names them.
const (
	CodecH264 = "video/H264" // copied into the segments as it comes
	CodecVP8  = "video/VP8"  // transcoded to H.264
	CodecVP9  = "video/VP9"  // transcoded to H.264
)

// PlaylistName is the name of the playlist a Packager writes in its
// directory.
const PlaylistName = "index.m3u8"

// ListSize is how many segments the playlist lists: a window wide enough
// for a player's three-segment hold-back plus a late fetch, small enough
// that the disk holds seconds, not hours.
const ListSize = 6

const (
	defaultSegment = time.Second
	maxSegment     = 2 * time.Second
	minSegment     = 100 * time.Millisecond

	// The payload types of the SDP the packager writes; packets are
	// rewritten to them, whatever the publisher negotiated.
	ptVideo = 96
	ptAudio = 97

	minBackoff = 250 * time.Millisecond
	maxBackoff = 10 * time.Second
	// A run that lasted this long was healthy: the next failure starts
	// the backoff afresh.
	healthyRun = 30 * time.Second
	// How long ffmpeg may take to bind its RTP ports before the run is
	// given up and restarted.
	readyTimeout = 10 * time.Second
)

// ErrClosed is returned by writes to a closed Packager.
var ErrClosed = errors.New("hls: packager closed")

// Options configure a Packager.
type Options struct {
	// Dir receives the playlist and segments, and belongs to the
	// Packager: it is created by Start and the Packager's files in it are
	// removed by Close. The Handler serves root/{class}/, so Dir is
	// normally filepath.Join(root, class).
	Dir string
	// FFmpeg is the ffmpeg binary; "ffmpeg" from PATH when empty.
	FFmpeg string
	// VideoCodec is CodecH264 (copied) or CodecVP8 / CodecVP9
	// (transcoded to H.264 with libx264).
	VideoCodec string
	// SegmentDuration is the target length of a segment, 100 ms to 2 s; 1 s
	// when zero. With H.264 copied, segments can only start at the
	// publisher's keyframes, so the publisher should send one at least
	// this often (the Packager asks for one when it has seen none for a
	// quarter longer).
	SegmentDuration time.Duration
	// Logger receives ffmpeg's output at debug level and the packager's
	// own events; slog's discard handler when nil.
	Logger *slog.Logger
	// RequestKeyframe asks the publisher for a keyframe (a PLI through the
	// SFU). It is called when ffmpeg (re)starts and until its first
	// segment is out, and, with H.264 copied, whenever no keyframe has
	// come for 1.25 × SegmentDuration, and, with VP8 or VP9 transcoded,
	// after packets were dropped (at most once per SegmentDuration).
	// It must not block. May be nil.
	RequestKeyframe func()
}

// Stats counts what a Packager did with the packets it was given.
type Stats struct {
	VideoPackets uint64 // video packets sent to ffmpeg
	AudioPackets uint64 // audio packets sent to ffmpeg
	// Skipped packets came before the first keyframe of an ffmpeg run,
	// which ffmpeg could not have used.
	Skipped uint64
	// Dropped packets came while ffmpeg was starting or restarting, or
	// could not be sent at once.
	Dropped uint64
	// SocketDrops counts the packets the kernel dropped because ffmpeg's
	// sockets were full, in the current run: ffmpeg falling behind.
	SocketDrops      uint64
	Restarts         uint64 // ffmpeg runs after the first
	KeyframeRequests uint64 // calls of Options.RequestKeyframe
}

// Packager packages one live channel into HLS with one ffmpeg process,
// restarted with backoff if it dies while packets arrive. WriteVideo and
// WriteAudio may be called from different goroutines.
type Packager struct {
	opt       Options
	log       *slog.Logger
	transcode bool
	kindOf    func([]byte) frameKind
	tag       string // random, so that no two packagers' segment names meet

	cancel  context.CancelFunc
	ctx     context.Context
	done    chan struct{} // closed when the supervisor has returned
	arrived chan struct{} // a packet came while no run was ready

	closeOnce sync.Once
	closed    atomic.Bool
	closeErr  error

	run     atomic.Pointer[run]
	video   sender
	audio   sender
	lastKey atomic.Int64 // unix nanoseconds of the last video keyframe seen
	lastReq atomic.Int64 // unix nanoseconds of the last keyframe request

	skipped, dropped, restarts, requests atomic.Uint64
}

// sender writes one kind's packets to the current run, rewriting their
// payload type into its own buffer so that the caller's stays untouched.
type sender struct {
	mu   sync.Mutex
	buf  []byte
	pt   byte
	sent atomic.Uint64
}

// run is one ffmpeg process and the sockets that feed it.
type run struct {
	video, audio *net.UDPConn
	pid          int
	ports        [2]int      // video, audio
	ready        atomic.Bool // ffmpeg has bound its ports
	open         atomic.Bool // a keyframe with its parameters has passed
	listed       atomic.Bool // ffmpeg has written its first playlist
}

// Start validates opt, prepares opt.Dir and starts ffmpeg. The returned
// Packager runs until Close.
func Start(opt Options) (*Packager, error) {
	if opt.Dir == "" {
		return nil, apperr.Field("Dir", "is required")
	}
	p := &Packager{opt: opt, log: opt.Logger, done: make(chan struct{}), arrived: make(chan struct{}, 1)}
	switch strings.ToUpper(opt.VideoCodec) {
	case strings.ToUpper(CodecH264):
		p.kindOf = h264Kind
	case strings.ToUpper(CodecVP8):
		p.kindOf, p.transcode = vp8Kind, true
	case strings.ToUpper(CodecVP9):
		p.kindOf, p.transcode = vp9Kind, true
	default:
		return nil, apperr.Field("VideoCodec", "%q is not packaged: want %s, %s or %s", opt.VideoCodec, CodecH264, CodecVP8, CodecVP9)
	}
	if p.opt.SegmentDuration == 0 {
		p.opt.SegmentDuration = defaultSegment
	}
	if d := p.opt.SegmentDuration; d < minSegment || d > maxSegment {
		return nil, apperr.Field("SegmentDuration", "%s is out of range: want %s to %s", d, minSegment, maxSegment)
	}
	if p.opt.FFmpeg == "" {
		p.opt.FFmpeg = "ffmpeg"
	}
	bin, err := exec.LookPath(p.opt.FFmpeg)
	if err != nil {
		return nil, fmt.Errorf("hls: ffmpeg is needed to package HLS (install the Debian package ffmpeg): %w", err)
	}
	p.opt.FFmpeg = bin
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("hls: segment name tag: %w", err)
	}
	p.tag = hex.EncodeToString(b[:])
	if err := os.MkdirAll(opt.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("hls: %w", err)
	}
	// Files a crashed server left would be served as this stream's.
	if err := removeOwnFiles(opt.Dir); err != nil {
		return nil, err
	}
	p.video.pt, p.audio.pt = ptVideo, ptAudio
	p.ctx, p.cancel = context.WithCancel(context.Background())
	go p.supervise()
	go p.watchKeyframes()
	return p, nil
}

// WriteVideo hands one RTP packet of the video track to ffmpeg. It never
// blocks: a packet that cannot be sent now is dropped and counted. pkt is
// not kept. The error is ErrClosed after Close, or an Invalid error when
// pkt is not RTP.
func (p *Packager) WriteVideo(pkt []byte) error {
	if p.closed.Load() {
		return ErrClosed
	}
	payload := payloadOf(pkt)
	if payload == nil {
		return apperr.New(apperr.Invalid, "hls: not an RTP packet (%d bytes)", len(pkt))
	}
	kind := p.kindOf(payload)
	if kind != frameOther {
		p.lastKey.Store(time.Now().UnixNano())
	}
	r := p.readyRun()
	if r == nil {
		return nil
	}
	if !r.open.Load() {
		// ffmpeg's first video packet must start a keyframe carrying its
		// parameters, or the first segment starts undecodable (and a
		// copied H.264 stream has no size to probe).
		if kind != frameKeyWithParams {
			p.skipped.Add(1)
			return nil
		}
		r.open.Store(true)
	}
	p.send(&p.video, r.video, pkt)
	return nil
}

// WriteAudio hands one RTP packet of the Opus track to ffmpeg, on the same
// terms as WriteVideo. Audio waits for video's first keyframe, so that
// both streams of a run start together (ffmpeg times each RTP stream from
// its first packet).
func (p *Packager) WriteAudio(pkt []byte) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if payloadOf(pkt) == nil {
		return apperr.New(apperr.Invalid, "hls: not an RTP packet (%d bytes)", len(pkt))
	}
	r := p.readyRun()
	if r == nil {
		return nil
	}
	if !r.open.Load() {
		p.skipped.Add(1)
		return nil
	}
	p.send(&p.audio, r.audio, pkt)
	return nil
}

// readyRun returns the run that packets go to, or nil (counting a drop
// and waking the supervisor) when ffmpeg is not ready for them.
func (p *Packager) readyRun() *run {
	r := p.run.Load()
	if r != nil && r.ready.Load() {
		return r
	}
	p.dropped.Add(1)
	select {
	case p.arrived <- struct{}{}:
	default:
	}
	return nil
}

// send writes pkt with the sender's payload type, without waiting: the
// socket is non-blocking, so a full buffer (ffmpeg behind) drops the
// packet instead of stalling the SFU's forwarding.
func (p *Packager) send(s *sender, c *net.UDPConn, pkt []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf[:0], pkt...)
	s.buf[1] = s.buf[1]&0x80 | s.pt
	rc, err := c.SyscallConn()
	if err != nil {
		p.dropped.Add(1)
		return
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		_, werr = syscall.Write(int(fd), s.buf)
		return true // one attempt: never wait for the socket
	})
	if err != nil || werr != nil {
		p.dropped.Add(1)
		return
	}
	s.sent.Add(1)
}

// Stats returns the packager's counters so far.
func (p *Packager) Stats() Stats {
	return Stats{
		VideoPackets:     p.video.sent.Load(),
		AudioPackets:     p.audio.sent.Load(),
		Skipped:          p.skipped.Load(),
		Dropped:          p.dropped.Load(),
		Restarts:         p.restarts.Load(),
		KeyframeRequests: p.requests.Load(),
		SocketDrops:      p.socketDrops(),
	}
}

// Close stops ffmpeg and removes the packager's files. Writes after Close
// return ErrClosed.
func (p *Packager) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		p.cancel()
		<-p.done
		p.closeErr = removeOwnFiles(p.opt.Dir)
		// The directory goes too unless someone else put files in it.
		if err := os.Remove(p.opt.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			p.log.Debug("hls: directory kept", "dir", p.opt.Dir, "err", err)
		}
	})
	return p.closeErr
}

// supervise runs ffmpeg until Close, restarting it with backoff when it
// exits, but only once packets arrive again: a channel with no publisher
// does not need a process.
func (p *Packager) supervise() {
	defer close(p.done)
	// ffmpeg gets SIGKILL when the thread that started it exits
	// (Pdeathsig), and Go may retire an idle thread at any time: pinning
	// this goroutine to its thread keeps that thread until Close.
	runtime.LockOSThread()
	backoff := minBackoff
	for n := 0; ; n++ {
		if n > 0 {
			p.restarts.Add(1)
		}
		started := time.Now()
		err := p.runOnce(n)
		if p.ctx.Err() != nil {
			return
		}
		if time.Since(started) > healthyRun {
			backoff = minBackoff
		}
		p.log.Warn("hls: ffmpeg exited; restarting", "err", err, "backoff", backoff, "run", n)
		// Forget packets from before the exit: only new ones restart it.
		select {
		case <-p.arrived:
		default:
		}
		t := time.NewTimer(backoff)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
		select {
		case <-p.ctx.Done():
			return
		case <-p.arrived:
		}
	}
}

// runOnce runs ffmpeg once, until it exits or Close.
func (p *Packager) runOnce(n int) error {
	vport, aport, err := freePortPairs()
	if err != nil {
		return err
	}
	sdpPath := filepath.Join(p.opt.Dir, "stream.sdp")
	if err := os.WriteFile(sdpPath, []byte(p.sdp(vport, aport)), 0o600); err != nil {
		return fmt.Errorf("hls: %w", err)
	}
	r := &run{ports: [2]int{vport, aport}}

	cmd := exec.CommandContext(p.ctx, p.opt.FFmpeg, p.args(sdpPath, n)...)
	cmd.Dir = p.opt.Dir
	stderr := &lineLogger{log: p.log, run: n}
	cmd.Stderr = stderr
	cmd.WaitDelay = 2 * time.Second
	// If the server dies without closing us, its ffmpegs die with it
	// instead of holding ports and a directory for ever.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("hls: start ffmpeg: %w", err)
	}
	p.log.Debug("hls: ffmpeg started", "pid", cmd.Process.Pid, "run", n, "dir", p.opt.Dir)
	r.pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p.run.Store(r)
	defer p.run.CompareAndSwap(r, nil)

	// Packets sent before ffmpeg binds its ports are refused by the
	// kernel; the keyframe that starts the stream must not be among them.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(readyTimeout)
	for !r.ready.Load() {
		select {
		case err := <-exited:
			return p.exitError(err, stderr)
		case <-tick.C:
		}
		if portsBound(vport, aport) {
			// Dialled only now: a socket of ours on either port would
			// look like ffmpeg's.
			if r.video, err = dialLoopback(vport); err != nil {
				break
			}
			defer r.video.Close()
			if r.audio, err = dialLoopback(aport); err != nil {
				break
			}
			defer r.audio.Close()
			r.ready.Store(true)
			p.requestKeyframe()
		} else if time.Now().After(deadline) {
			_ = cmd.Cancel()
			<-exited
			return fmt.Errorf("hls: ffmpeg did not open its RTP ports within %s", readyTimeout)
		}
	}
	if err != nil {
		_ = cmd.Cancel()
		<-exited
		return err
	}
	return p.exitError(<-exited, stderr)
}

func (p *Packager) exitError(err error, stderr *lineLogger) error {
	if last := stderr.Last(); last != "" {
		return fmt.Errorf("hls: ffmpeg: %v (last output: %s)", err, last)
	}
	return fmt.Errorf("hls: ffmpeg: %v", err)
}

// watchKeyframes asks the publisher for a keyframe while ffmpeg waits for
// one to start (until its first segment is out); with H.264 copied,
// whenever the publisher has sent none for a segment's duration and a
// quarter (segments can only start at one); with VP8 or VP9 transcoded,
// after packets were dropped on the way to ffmpeg.
func (p *Packager) watchKeyframes() {
	d := p.opt.SegmentDuration
	tick := time.NewTicker(d / 4)
	defer tick.Stop()
	var lost uint64 // packets dropped on the way to ffmpeg, as of the last look
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		r := p.run.Load()
		if r == nil || !r.ready.Load() {
			continue
		}
		now := time.Now().UnixNano()
		if now-p.lastReq.Load() < int64(d) {
			continue
		}
		if !r.listed.Load() {
			if _, err := os.Stat(filepath.Join(p.opt.Dir, PlaylistName)); err == nil {
				r.listed.Store(true)
			}
		}
		// Until ffmpeg has written a segment, the keyframe it started
		// from may have been lost (its socket overflowed, or it had not
		// found the stream's size yet): ask again.
		// The quarter of slack spares a publisher whose keyframes come
		// every segment duration already a request just before each.
		// A transcoded stream whose packets were dropped on the way has
		// a decoder that shows damage, or nothing, until the next
		// keyframe, and a browser publisher sends none unasked.
		dropped := p.dropped.Load() + p.socketDrops()
		damaged := p.transcode && dropped > lost
		lost = dropped
		if !r.open.Load() || !r.listed.Load() || damaged || (!p.transcode && now-p.lastKey.Load() >= int64(d+d/4)) {
			p.requestKeyframe()
		}
	}
}

func (p *Packager) requestKeyframe() {
	p.lastReq.Store(time.Now().UnixNano())
	if p.opt.RequestKeyframe != nil {
		p.requests.Add(1)
		p.opt.RequestKeyframe()
	}
}
