package hls

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// pipeline is a source publishing into a packager whose directory a
// handler serves over HTTP, as in production.
type pipeline struct {
	p        *Packager
	src      *source
	dir      string
	base     string // "http://127.0.0.1:port"
	signer   *Signer
	class    store.ClassID
	requests atomic.Int64
}

func startPipeline(t *testing.T, codec string, gop int) *pipeline {
	t.Helper()
	needTool(t, "ffprobe")
	root := t.TempDir()
	pl := &pipeline{class: "0b5a4f0e-6d0c-4f4e-9a53-2f6c1f1d1e10", signer: NewSigner(testKey)}
	pl.dir = filepath.Join(root, string(pl.class))
	p, err := Start(Options{
		Dir: pl.dir, FFmpeg: needTool(t, "ffmpeg"), VideoCodec: codec, SegmentDuration: time.Second,
		Logger:          slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		RequestKeyframe: func() { pl.requests.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	pl.p = p
	t.Cleanup(func() { _ = p.Close() })
	srv := httptest.NewServer(NewHandler(root, pl.signer, nil))
	t.Cleanup(srv.Close)
	pl.base = srv.URL
	pl.src = startSource(t, sourceOptions{codec: codec, size: "640x360", gop: gop}, p.WriteVideo, p.WriteAudio)
	return pl
}

// testWriter sends the packager's warnings to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// media is what a playlist on disk lists.
type media struct {
	sequence      int
	segments      []string
	durations     []float64
	discontinuity bool
}

func (pl *pipeline) playlist(t *testing.T) media {
	t.Helper()
	var m media
	b, err := os.ReadFile(filepath.Join(pl.dir, PlaylistName))
	if errors.Is(err, os.ErrNotExist) {
		return m
	}
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			m.sequence, _ = strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"))
		case strings.HasPrefix(line, "#EXTINF:"):
			d, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(line, "#EXTINF:"), ","), 64)
			m.durations = append(m.durations, d)
		case line == "#EXT-X-DISCONTINUITY":
			m.discontinuity = true
		case line != "" && !strings.HasPrefix(line, "#"):
			m.segments = append(m.segments, line)
		}
	}
	return m
}

// waitSegments waits until the playlist lists at least n segments.
func (pl *pipeline) waitSegments(t *testing.T, n int) media {
	t.Helper()
	var m media
	waitFor(t, 20*time.Second, strconv.Itoa(n)+" segments in the playlist", func() bool {
		if err := pl.src.err(); err != nil {
			t.Fatal(err)
		}
		m = pl.playlist(t)
		return len(m.segments) >= n
	})
	return m
}

// url is the signed URL of a file of the class, as the playlist's URIs are.
func (pl *pipeline) url(name string) string {
	u := pl.signer.URL(pl.class, time.Now())
	return pl.base + strings.Replace(u, PlaylistName, name, 1)
}

// probe is what ffprobe finds in the signed playlist over HTTP.
type probe struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
	} `json:"streams"`
}

func ffprobe(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(needTool(t, "ffprobe"), append([]string{"-v", "error"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %v: %v: %s", args, err, stderr.String())
	}
	return out
}

// codecs returns the streams a player finds through the signed playlist.
func (pl *pipeline) codecs(t *testing.T) string {
	t.Helper()
	var p probe
	out := ffprobe(t, "-show_entries", "stream=codec_type,codec_name", "-of", "json", pl.url(PlaylistName))
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	var names []string
	for _, s := range p.Streams {
		names = append(names, s.CodecType+":"+s.CodecName)
	}
	return strings.Join(names, ",")
}

// end returns the stream time (seconds) where the playlist's newest
// segment ends: the last timestamp of its video, as ffprobe reads it.
func (pl *pipeline) end(t *testing.T, m media) float64 {
	t.Helper()
	out := ffprobe(t, "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0", pl.url(m.segments[len(m.segments)-1]))
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		t.Fatalf("no video packets in %s", m.segments[len(m.segments)-1])
	}
	end, err := strconv.ParseFloat(lines[len(lines)-1], 64)
	if err != nil {
		t.Fatalf("pts %q: %v", lines[len(lines)-1], err)
	}
	return end
}

// checkPlayable checks the streams a player sees and that the stream
// grows: the newest segment ends later and later.
func (pl *pipeline) checkPlayable(t *testing.T) media {
	t.Helper()
	m1 := pl.waitSegments(t, 2)
	if codecs := pl.codecs(t); codecs != "video:h264,audio:aac" {
		t.Fatalf("streams %s, want video:h264,audio:aac", codecs)
	}
	end1 := pl.end(t, m1)
	m2 := pl.waitSegments(t, 4)
	if end2 := pl.end(t, m2); end2 < end1+1 {
		t.Errorf("the stream did not grow: it ended at %.3f s, then %.3f s", end1, end2)
	}
	return m2
}

// firstVideoPacketFlags returns the flags of a segment's first video
// packet ("K__" for a keyframe), fetched over HTTP with the signature.
func (pl *pipeline) firstVideoPacketFlags(t *testing.T, segment string) string {
	t.Helper()
	out := ffprobe(t, "-select_streams", "v:0", "-show_entries", "packet=flags", "-read_intervals", "%+#1", "-of", "csv=p=0", pl.url(segment))
	return strings.TrimSpace(string(out))
}

// checkSegments checks that every listed segment starts on a keyframe and
// lasts at most maxDur.
func (pl *pipeline) checkSegments(t *testing.T, m media, maxDur float64) {
	t.Helper()
	for i, seg := range m.segments {
		if flags := pl.firstVideoPacketFlags(t, seg); !strings.HasPrefix(flags, "K") {
			t.Errorf("segment %s starts with a packet flagged %q, not a keyframe", seg, flags)
		}
		if d := m.durations[i]; d <= 0 || d > maxDur {
			t.Errorf("segment %s lasts %.3f s, want (0, %.1f]", seg, d, maxDur)
		}
	}
}

func TestPackagerH264Copy(t *testing.T) {
	pl := startPipeline(t, CodecH264, 30)

	m := pl.checkPlayable(t)
	pl.checkSegments(t, m, 2.0)
	if pl.requests.Load() < 1 {
		t.Error("no keyframe was asked when ffmpeg started")
	}
	st := pl.p.Stats()
	if st.VideoPackets == 0 || st.AudioPackets == 0 || st.Restarts != 0 {
		t.Errorf("stats %+v", st)
	}

	// ffmpeg dies: the packager restarts it, the playlist goes on with a
	// discontinuity, and the new run starts on a keyframe too.
	pid := pl.p.run.Load().pid
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var after media
	waitFor(t, 20*time.Second, "a segment of the restarted ffmpeg", func() bool {
		after = pl.playlist(t)
		for _, s := range after.segments {
			if strings.Contains(s, "-1-") {
				return true
			}
		}
		return false
	})
	if !after.discontinuity || after.sequence < m.sequence {
		t.Errorf("restarted playlist: discontinuity %v, media sequence %d (was %d)", after.discontinuity, after.sequence, m.sequence)
	}
	last := after.segments[len(after.segments)-1]
	if flags := pl.firstVideoPacketFlags(t, last); !strings.HasPrefix(flags, "K") {
		t.Errorf("restarted segment %s starts with %q, not a keyframe", last, flags)
	}
	if st := pl.p.Stats(); st.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", st.Restarts)
	}

	if err := pl.p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pl.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the directory outlived Close: %v", err)
	}
	if err := pl.p.WriteVideo(make([]byte, 20)); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteVideo after Close = %v, want ErrClosed", err)
	}
}

func TestPackagerVP8Transcode(t *testing.T) {
	// Source keyframes every 2 s; the transcoder forces one per 1 s segment.
	pl := startPipeline(t, CodecVP8, 60)
	m := pl.checkPlayable(t)
	pl.checkSegments(t, m, 1.5)
}

// h264Packet is an RTP packet carrying payload.
func rtpPacket(seq uint16, ts uint32, payload ...byte) []byte {
	pkt := []byte{0x80, 0x80 | 100, byte(seq >> 8), byte(seq), byte(ts >> 24), byte(ts >> 16), byte(ts >> 8), byte(ts), 0, 0, 0, 1}
	return append(pkt, payload...)
}

func TestPackagerAsksForKeyframes(t *testing.T) {
	var requests atomic.Int64
	goroutines := runtime.NumGoroutine()
	p, err := Start(Options{
		Dir: filepath.Join(t.TempDir(), "c1"), FFmpeg: needTool(t, "ffmpeg"), VideoCodec: CodecH264,
		SegmentDuration: 250 * time.Millisecond, RequestKeyframe: func() { requests.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	// The first request comes once ffmpeg listens.
	waitFor(t, 10*time.Second, "a keyframe request at start", func() bool { return requests.Load() >= 1 })
	// ffmpeg listens on loopback only: nobody else can inject media.
	for _, port := range p.run.Load().ports {
		if addrs := boundAddrs(t, port); len(addrs) != 1 || addrs[0] != "0100007F" {
			t.Errorf("port %d is bound on %v, want 127.0.0.1 (0100007F) only", port, addrs)
		}
	}
	// A keyframe with its SPS opens the stream; then none comes, and the
	// packager keeps asking, once per segment duration.
	if err := p.WriteVideo(rtpPacket(1, 0, 0x67, 0x42, 0xc0, 0x1f)); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.VideoPackets != 1 {
		t.Fatalf("the SPS packet was not sent: %+v", st)
	}
	before := requests.Load()
	waitFor(t, 10*time.Second, "repeated keyframe requests", func() bool { return requests.Load() >= before+2 })
	if err := p.WriteAudio([]byte{0x80}); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("WriteAudio of a non-RTP packet = %v, want Invalid", err)
	}
	// ffmpeg stalls: writes still return at once, and what its socket
	// cannot hold is counted as dropped.
	pid := p.run.Load().pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	fu := rtpPacket(2, 3000, append([]byte{0x7c, 0x05}, make([]byte, 1180)...)...)
	for range 8000 { // 9.6 MB, more than the 4 MiB socket buffer
		if err := p.WriteVideo(fu); err != nil {
			t.Fatal(err)
		}
	}
	st := p.Stats()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if st.SocketDrops == 0 {
		t.Errorf("no drops counted while ffmpeg was stopped: %+v", st)
	}
	t.Logf("8000 packets to a stopped ffmpeg: %+v", st)

	// Close leaves nothing running: no goroutine, no ffmpeg.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("ffmpeg %d outlived Close: %v", pid, err)
	}
	waitFor(t, 5*time.Second, "the packager's goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines })
}

func TestStartRefuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c1")
	for _, tc := range []struct {
		name string
		opt  Options
	}{
		{"no dir", Options{VideoCodec: CodecH264}},
		{"unknown codec", Options{Dir: dir, VideoCodec: "video/AV1"}},
		{"segments too long", Options{Dir: dir, VideoCodec: CodecH264, SegmentDuration: 6 * time.Second}},
		{"segments too short", Options{Dir: dir, VideoCodec: CodecH264, SegmentDuration: time.Millisecond}},
		{"no ffmpeg", Options{Dir: dir, VideoCodec: CodecH264, FFmpeg: filepath.Join(dir, "no-ffmpeg")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := Start(tc.opt); err == nil {
				p.Close()
				t.Fatal("Start succeeded")
			}
		})
	}
}

// boundAddrs returns the local addresses (hex, as /proc/net/udp shows
// them) of the UDP sockets bound to port.
func boundAddrs(t *testing.T, port int) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		addr, hexPort, _ := strings.Cut(fields[1], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
			addrs = append(addrs, addr)
		}
	}
	return addrs
}

// TestPackagerRestartsOnlyForPackets: a dead ffmpeg is started again when
// packets come, not while the channel is silent.
func TestPackagerRestartsOnlyForPackets(t *testing.T) {
	p, err := Start(Options{Dir: filepath.Join(t.TempDir(), "c1"), FFmpeg: needTool(t, "ffmpeg"), VideoCodec: CodecVP8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	waitFor(t, 10*time.Second, "ffmpeg to listen", func() bool { r := p.run.Load(); return r != nil && r.ready.Load() })
	if err := syscall.Kill(p.run.Load().pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the run to end", func() bool { return p.run.Load() == nil })
	// Four times the first backoff, with no packet: no new ffmpeg.
	quiet := time.Now().Add(4 * minBackoff)
	for time.Now().Before(quiet) {
		if p.run.Load() != nil || p.Stats().Restarts != 0 {
			t.Fatal("ffmpeg was restarted with no packet arriving")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.WriteVideo(rtpPacket(1, 0, 0x10, 0x50)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "ffmpeg restarted by a packet", func() bool {
		r := p.run.Load()
		return r != nil && r.ready.Load() && p.Stats().Restarts == 1
	})
}

func TestPackagerTranscodeAsksAgainAfterLoss(t *testing.T) {
	// A transcoded stream needs a keyframe after packets were lost on the
	// way to ffmpeg: its decoder shows nothing sound until the next one,
	// and a browser publisher sends none unasked.
	var requests atomic.Int64
	dir := filepath.Join(t.TempDir(), "c1")
	d := 250 * time.Millisecond
	p, err := Start(Options{
		Dir: dir, FFmpeg: needTool(t, "ffmpeg"), VideoCodec: CodecVP8,
		SegmentDuration: d, RequestKeyframe: func() { requests.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	waitFor(t, 10*time.Second, "ffmpeg to listen", func() bool { return requests.Load() >= 1 })
	// A VP8 keyframe opens the stream, and a playlist on disk stands for
	// ffmpeg's first segment: from now on a sound stream needs no request.
	key := rtpPacket(1, 0, 0x10, 0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01)
	if err := p.WriteVideo(key); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, PlaylistName), []byte("#EXTM3U\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var settled int64
	waitFor(t, 10*time.Second, "requests to stop once the stream is open and listed", func() bool {
		n := requests.Load()
		if n != settled {
			settled = n
			return false
		}
		time.Sleep(3 * d) // a quiet spell longer than the request interval
		return requests.Load() == settled
	})
	// Losses: ffmpeg stopped, its socket overflows.
	pid := p.run.Load().pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	inter := rtpPacket(2, 3000, append([]byte{0x10, 0x01}, make([]byte, 1180)...)...)
	for range 8000 {
		if err := p.WriteVideo(inter); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.SocketDrops+st.Dropped == 0 {
		t.Fatalf("no loss while ffmpeg was stopped: %+v", st)
	}
	waitFor(t, 10*time.Second, "a keyframe request after the loss", func() bool { return requests.Load() > settled })
}
