package hls

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"sync"
)

// ffmpeg's side of a run: the SDP it reads, its command line, its output.

// sdp describes the two RTP streams to ffmpeg.
func (p *Packager) sdp(vport, aport int) string {
	video := "H264/90000\r\na=fmtp:96 packetization-mode=1"
	switch {
	case strings.EqualFold(p.opt.VideoCodec, CodecVP8):
		video = "VP8/90000"
	case strings.EqualFold(p.opt.VideoCodec, CodecVP9):
		video = "VP9/90000"
	}
	return "v=0\r\n" +
		"o=- 0 0 IN IP4 127.0.0.1\r\n" +
		"s=liveclass\r\n" +
		"c=IN IP4 127.0.0.1\r\n" +
		"t=0 0\r\n" +
		"m=video " + strconv.Itoa(vport) + " RTP/AVP 96\r\n" +
		"a=rtpmap:96 " + video + "\r\n" +
		"m=audio " + strconv.Itoa(aport) + " RTP/AVP 97\r\n" +
		"a=rtpmap:97 opus/48000/2\r\n"
}

// segmentPrefix names run n's segments: the random tag keeps names unique
// across packagers of the same class (a CDN may still hold an old
// stream's segment), the run number across restarts.
func (p *Packager) segmentPrefix(n int) string {
	return "seg-" + p.tag + "-" + strconv.Itoa(n) + "-"
}

// args is ffmpeg's command line for run n.
func (p *Packager) args(sdpPath string, n int) []string {
	secs := strconv.FormatFloat(p.opt.SegmentDuration.Seconds(), 'f', -1, 64)
	a := []string{
		"-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
		"-protocol_whitelist", "file,udp,rtp",
		// The SDP says what the streams are; a keyframe starts the
		// video, so a short probe finds the rest.
		"-analyzeduration", "3000000",
		// A keyframe comes in a burst of packets; the kernel's default
		// socket buffer (208 KiB) loses some of a 720p one while ffmpeg
		// is busy starting. The kernel caps this at net.core.rmem_max.
		"-buffer_size", "4194304",
		// Bound to loopback: nobody else may inject packets.
		"-localaddr", "127.0.0.1",
		"-i", sdpPath,
		"-map", "0:v:0", "-map", "0:a:0",
	}
	if p.transcode {
		a = append(a,
			"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
			"-pix_fmt", "yuv420p", "-sc_threshold", "0",
			// Frames keep the publisher's timing. A WebRTC source's
			// frame rate varies and ffmpeg may guess it wrong (90k from
			// the RTP clock), and a constant-rate output would then
			// duplicate frames by the thousand.
			"-fps_mode", "passthrough",
			// A keyframe at every segment boundary, whatever the
			// source's keyframes.
			"-force_key_frames", "expr:gte(t,n_forced*"+secs+")",
		)
	} else {
		a = append(a, "-c:v", "copy")
	}
	flags := "delete_segments+independent_segments+temp_file+program_date_time"
	if n > 0 {
		// A restarted ffmpeg continues the playlist (media sequence and
		// listed segments) and marks where its timestamps restart.
		flags += "+append_list+discont_start"
	}
	return append(a,
		"-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
		// Without a bound, a missing audio stream would hold video back
		// by ten seconds.
		"-max_interleave_delta", "500000",
		"-f", "hls",
		"-hls_time", secs,
		"-hls_list_size", strconv.Itoa(ListSize),
		"-hls_flags", flags,
		"-hls_segment_type", "mpegts",
		"-hls_segment_filename", p.segmentPrefix(n)+"%d.ts",
		PlaylistName,
	)
}

// lineLogger logs ffmpeg's stderr line by line at debug level and keeps
// the last line for the error that reports its exit.
type lineLogger struct {
	log *slog.Logger
	run int

	mu      sync.Mutex
	pending []byte
	last    string
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, b...)
	for {
		i := bytes.IndexAny(l.pending, "\r\n")
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(l.pending[:i])); line != "" {
			l.log.Debug("ffmpeg", "run", l.run, "line", line)
			l.last = line
		}
		l.pending = l.pending[i+1:]
	}
	if len(l.pending) > 64<<10 { // a line that never ends
		l.pending = nil
	}
	return len(b), nil
}

// Last returns the last line ffmpeg wrote.
func (l *lineLogger) Last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}
