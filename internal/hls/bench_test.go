package hls

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's CPU
// times: 100 on every Linux this runs on.
const clockTicks = 100

// benchPipeline starts a source of the size given (for H.264 a clip replayed in real
// time, so that encoding it costs the machine nothing) publishing into a packager with
// segments of seg; onVideo, when set, sees each video packet after the
// packager took it.
func benchPipeline(b *testing.B, codec, size, pattern string, seg time.Duration, onVideo func(p *Packager, pkt []byte)) *Packager {
	b.Helper()
	needTool(b, "ffprobe")
	p, err := Start(Options{Dir: filepath.Join(b.TempDir(), "c1"), FFmpeg: needTool(b, "ffmpeg"), VideoCodec: codec, SegmentDuration: seg})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	src := sourceOptions{codec: codec, size: size, pattern: pattern, gop: int(seg.Seconds() * 30)}
	if codec == CodecH264 {
		// A replayed VP8 clip is not probed by ffmpeg's SDP input
		// ("unspecified size"), while a live VP8 encoder's stream is:
		// VP8 is encoded live, at a cost the packager's CPU figure
		// leaves out (it is read for ffmpeg's own process).
		src.clip = makeClip(b, src, 6)
	}
	startSource(b, src, func(pkt []byte) error {
		err := p.WriteVideo(pkt)
		if onVideo != nil {
			onVideo(p, pkt)
		}
		return err
	}, p.WriteAudio)
	return p
}

// entryLog records when each video frame (RTP timestamp) entered
// WriteVideo, from the first packet ffmpeg was sent.
type entryLog struct {
	mu     sync.Mutex
	base   uint32
	last   uint32
	unwrap int64
	at     []entry
}

type entry struct {
	media time.Duration // since the first frame sent to ffmpeg
	wall  time.Time
}

func (l *entryLog) onVideo(p *Packager, pkt []byte) {
	now := time.Now()
	if p.Stats().VideoPackets == 0 || len(pkt) < 8 {
		return
	}
	ts := uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7])
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.at) == 0 {
		l.base, l.last = ts, ts
	}
	if len(l.at) > 0 && ts == l.last {
		return
	}
	l.unwrap += int64(int32(ts - l.last))
	l.last = ts
	l.at = append(l.at, entry{media: time.Duration(l.unwrap) * time.Second / 90000, wall: now})
}

// wallAt returns when the frame at media time m entered.
func (l *entryLog) wallAt(m time.Duration) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.at), func(i int) bool { return l.at[i].media >= m })
	if i == len(l.at) {
		return time.Time{}, false
	}
	return l.at[i].wall, true
}

// BenchmarkLatency measures how long a frame takes from WriteVideo to
// being listed in the playlist: "first" is the first frame of a segment,
// which waits for the whole segment; "edge" the last frame, which is what
// ffmpeg itself adds. Run with -benchtime=1x: one iteration lists 12
// segments of a 30 fps source published in real time.
func BenchmarkLatency(b *testing.B) {
	for _, tc := range []struct {
		name  string
		codec string
		size  string
		seg   time.Duration
	}{
		{"h264-copy/720p/seg=1s", CodecH264, "1280x720", time.Second},
		{"h264-copy/720p/seg=2s", CodecH264, "1280x720", 2 * time.Second},
		// The live VP8 encoder of the source does not keep real time at
		// 720p beside the transcoder on two shared cores.
		{"vp8-transcode/360p/seg=1s", CodecVP8, "640x360", time.Second},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				measureLatency(b, tc.codec, tc.size, tc.seg)
			}
		})
	}
}

func measureLatency(b *testing.B, codec, size string, seg time.Duration) {
	const segments = 12
	var log entryLog
	p := benchPipeline(b, codec, size, "", seg, log.onVideo)
	playlist := filepath.Join(p.opt.Dir, PlaylistName)
	seen := map[string]bool{}
	var start time.Duration // media time where the next new segment starts
	var firsts, edges []time.Duration
	deadline := time.Now().Add(time.Minute + segments*seg)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for len(firsts) < segments {
		if time.Now().After(deadline) {
			b.Fatalf("only %d segments listed", len(firsts))
		}
		<-tick.C
		data, err := os.ReadFile(playlist)
		if err != nil {
			continue
		}
		listed := time.Now()
		var dur time.Duration
		for line := range strings.Lines(string(data)) {
			line = strings.TrimSpace(line)
			if d, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
				f, _ := strconv.ParseFloat(strings.TrimSuffix(d, ","), 64)
				dur = time.Duration(f * float64(time.Second))
				continue
			}
			if line == "" || strings.HasPrefix(line, "#") || seen[line] {
				continue
			}
			seen[line] = true
			first, ok1 := log.wallAt(start)
			last, ok2 := log.wallAt(start + dur - time.Second/30)
			start += dur
			if !ok1 || !ok2 {
				b.Fatalf("segment %s lists media not yet written", line)
			}
			firsts = append(firsts, listed.Sub(first))
			edges = append(edges, listed.Sub(last))
		}
	}
	// The first segment includes ffmpeg's start-up; steady state is after.
	firsts, edges = firsts[1:], edges[1:]
	first, edge := mean(firsts), mean(edges)
	b.ReportMetric(float64(first.Milliseconds()), "first-frame-ms")
	b.ReportMetric(float64(maxOf(firsts).Milliseconds()), "max-first-frame-ms")
	b.ReportMetric(float64(edge.Milliseconds()), "edge-ms")
	// A player at hls.js's default (three target durations behind the
	// newest listed segment's end) shows a frame this long after it
	// entered, before its own fetch and buffering.
	b.ReportMetric(float64((edge + 3*seg).Milliseconds()), "player-3seg-ms")
	b.ReportMetric(float64(p.Stats().Dropped), "dropped")
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// BenchmarkFFmpegCPU measures the CPU ffmpeg spends packaging a 720p 30 fps
// publisher, read from /proc/<pid>/stat over 20 s once the first segment
// is out. Run with -benchtime=1x.
func BenchmarkFFmpegCPU(b *testing.B) {
	for _, tc := range []struct {
		name    string
		codec   string
		pattern string
	}{
		{"h264-copy/testsrc", CodecH264, ""},
		{"vp8-transcode/testsrc", CodecVP8, ""},
		// Moving grain over a busier pattern: closer to a camera's
		// picture than a test card, which costs an encoder little.
		{"vp8-transcode/grain", CodecVP8, "testsrc2,noise=alls=8:allf=t"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				var frames atomic.Int64
				var lastTS uint32 // touched by the source's video reader only
				p := benchPipeline(b, tc.codec, "1280x720", tc.pattern, time.Second, func(_ *Packager, pkt []byte) {
					if ts := uint32(pkt[4])<<24 | uint32(pkt[5])<<16 | uint32(pkt[6])<<8 | uint32(pkt[7]); ts != lastTS {
						lastTS = ts
						frames.Add(1)
					}
				})
				waitFor(b, time.Minute, "the first segment", func() bool {
					_, err := os.Stat(filepath.Join(p.opt.Dir, PlaylistName))
					return err == nil
				})
				pid := p.run.Load().pid
				t0, c0, f0 := time.Now(), cpuTicks(b, pid), frames.Load()
				<-time.After(20 * time.Second) // the measuring window, not a wait for an event
				t1, c1, f1 := time.Now(), cpuTicks(b, pid), frames.Load()
				if p.run.Load().pid != pid || p.Stats().Restarts != 0 {
					b.Fatal("ffmpeg restarted while measured")
				}
				secs := t1.Sub(t0).Seconds()
				cpu, fps := 100*float64(c1-c0)/clockTicks/secs, float64(f1-f0)/secs
				b.ReportMetric(cpu, "cpu-%")
				// Below 30 the source did not keep real time (its live
				// VP8 encoder shares the cores), so the CPU figure is for
				// fewer frames; cpu-%-30fps scales it to 30 frames a
				// second, as if each frame cost the same.
				b.ReportMetric(fps, "fps-in")
				b.ReportMetric(cpu*30/fps, "cpu-%-30fps")
				b.ReportMetric(float64(p.Stats().Dropped), "dropped")
			}
		})
	}
}

// cpuTicks returns the user plus system CPU time of pid, in clock ticks.
func cpuTicks(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name may hold spaces; the fields after it do not.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return utime + stime
}

// BenchmarkWriteVideo measures the packager's own cost per packet: parse,
// keyframe check, copy and a non-blocking send on loopback.
func BenchmarkWriteVideo(b *testing.B) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
		}
	}()
	conn, err := dialLoopback(sink.LocalAddr().(*net.UDPAddr).Port)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	p := &Packager{kindOf: h264Kind, arrived: make(chan struct{}, 1)}
	p.video.pt = ptVideo
	r := &run{video: conn}
	r.ready.Store(true)
	r.open.Store(true)
	p.run.Store(r)
	pkt := rtpPacket(1, 0, append([]byte{0x7c, 0x05}, make([]byte, 1100)...)...)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.WriteVideo(pkt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(p.Stats().Dropped), "dropped")
}
