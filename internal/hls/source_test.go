package hls

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// needTool returns the path of a binary the tests run for real, failing
// the test (never skipping it) when it is missing.
func needTool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s is not installed: run `make test`, which installs it (%v)", name, err)
	}
	return path
}

// source is a live publisher made by ffmpeg: a test pattern and a tone
// encoded in real time and sent as RTP to two loopback sockets, whose
// packets it hands to the packager's writes as an SFU tap would.
type source struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errc   chan error
}

// sourceOptions say what the source publishes.
type sourceOptions struct {
	codec string // CodecH264 or CodecVP8
	size  string // e.g. "640x360"
	gop   int    // frames between keyframes (30 fps)
	// pattern is the lavfi video source, "testsrc" when empty; filters
	// may follow it (",noise=...") for content harder to encode.
	pattern string
	// clip, when set, is a file made by makeClip that is replayed in a
	// loop instead of encoding live, so that the source costs almost no
	// CPU when what is measured is the packager's.
	clip string
}

// makeClip encodes seconds of test pattern and tone into a file the
// source can replay: MPEG-TS for H.264 (parameter sets before every
// keyframe, as a live encoder sends them), WebM for VP8.
func makeClip(tb testing.TB, opt sourceOptions, seconds int) string {
	tb.Helper()
	ext := ".ts"
	if opt.codec == CodecVP8 {
		ext = ".webm"
	}
	path := filepath.Join(tb.TempDir(), "clip"+ext)
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", opt.video(),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(seconds)}, videoArgs(opt)...)
	args = append(args, "-c:a", "libopus", "-b:a", "64k", path)
	if out, err := exec.Command(needTool(tb, "ffmpeg"), args...).CombinedOutput(); err != nil {
		tb.Fatalf("make clip: %v: %s", err, out)
	}
	return path
}

// videoArgs are the encoder options of a source: realtime settings, a
// fixed keyframe interval, no B-frames (WebRTC senders use none).
func videoArgs(opt sourceOptions) []string {
	gop := strconv.Itoa(opt.gop)
	if opt.codec == CodecVP8 {
		// No look-ahead and no hidden alt-ref frames, as a WebRTC
		// sender encodes.
		return []string{"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "16", "-b:v", "2500k", "-g", gop, "-keyint_min", gop,
			"-lag-in-frames", "0", "-auto-alt-ref", "0", "-error-resilient", "1"}
	}
	return []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-b:v", "2500k", "-g", gop, "-keyint_min", gop, "-bf", "0", "-pix_fmt", "yuv420p"}
}

// startSource starts ffmpeg and the two readers; onVideo and onAudio get
// every packet. It stops at the test's end.
func startSource(tb testing.TB, opt sourceOptions, onVideo, onAudio func([]byte) error) *source {
	tb.Helper()
	ffmpeg := needTool(tb, "ffmpeg")
	vconn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	aconn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	dest := func(c *net.UDPConn) string {
		return "rtp://127.0.0.1:" + strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port) + "?pkt_size=1200"
	}
	var args []string
	if opt.clip != "" {
		args = []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", opt.clip,
			"-map", "0:v", "-c:v", "copy"}
	} else {
		args = append([]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re",
			"-f", "lavfi", "-i", opt.video(),
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
			"-t", "120", "-map", "0:v"}, videoArgs(opt)...)
	}
	audioInput, audioCodec := "1:a", "libopus"
	if opt.clip != "" {
		audioInput, audioCodec = "0:a", "copy"
	}
	args = append(args, "-payload_type", "102", "-f", "rtp", dest(vconn),
		"-map", audioInput, "-c:a", audioCodec, "-payload_type", "111", "-f", "rtp", dest(aconn))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	out := &tailBuffer{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatal(err)
	}
	s := &source{cancel: cancel, errc: make(chan error, 3)}
	read := func(c *net.UDPConn, write func([]byte) error) {
		defer s.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if write == nil {
				continue
			}
			if err := write(buf[:n]); err != nil && !errors.Is(err, ErrClosed) {
				select {
				case s.errc <- err:
				default:
				}
			}
		}
	}
	s.wg.Add(3)
	go read(vconn, onVideo)
	go read(aconn, onAudio)
	go func() {
		defer s.wg.Done()
		err := cmd.Wait()
		if ctx.Err() == nil {
			s.errc <- errors.New("source ffmpeg exited: " + errString(err) + ": " + out.String())
		}
	}()
	tb.Cleanup(func() {
		cancel()
		vconn.Close()
		aconn.Close()
		s.wg.Wait()
	})
	return s
}

// err returns the first error the source met, nil if none.
func (s *source) err() error {
	select {
	case err := <-s.errc:
		return err
	default:
		return nil
	}
}

func errString(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

// tailBuffer keeps the last few kilobytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// video is the lavfi graph of the source's video.
func (opt sourceOptions) video() string {
	pattern, filters, _ := strings.Cut(opt.pattern, ",")
	if pattern == "" {
		pattern = "testsrc"
	}
	v := pattern + "=size=" + opt.size + ":rate=30"
	if filters != "" {
		v += "," + filters
	}
	return v
}
