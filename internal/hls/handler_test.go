package hls

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/store"
)

const testPlaylist = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
	"#EXTINF:1.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-26T11:46:02.426+0000\nseg-ab12-0-4.ts\n" +
	"#EXT-X-DISCONTINUITY\n#EXTINF:1.000000,\nseg-ab12-1-5.ts\n"

// handlerFixture is a root with class c1's playlist and segments as a
// packager leaves them, a secret file beside the root, and a handler
// over it whose clock stands still.
type handlerFixture struct {
	root   string
	signer *Signer
	now    time.Time
	h      http.Handler
}

func newHandlerFixture(t *testing.T) *handlerFixture {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "hls")
	class := filepath.Join(root, "c1")
	if err := os.MkdirAll(class, 0o750); err != nil {
		t.Fatal(err)
	}
	write := func(path, body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(class, PlaylistName), testPlaylist)
	write(filepath.Join(class, "seg-ab12-0-4.ts"), "segment four")
	write(filepath.Join(class, "seg-ab12-1-5.ts"), "segment five")
	write(filepath.Join(class, "stream.sdp"), "v=0\r\n")
	write(filepath.Join(class, "seg-ab12-1-6.ts.tmp"), "half a segment")
	write(filepath.Join(base, "secret.ts"), "secret")
	// A link out of the root, named as a segment: the root must hold.
	if err := os.Symlink(filepath.Join(base, "secret.ts"), filepath.Join(class, "seg-ab12-9-9.ts")); err != nil {
		t.Fatal(err)
	}
	f := &handlerFixture{root: root, signer: NewSigner(testKey), now: time.Date(2026, 11, 26, 11, 41, 0, 0, time.UTC)}
	f.h = NewHandler(root, f.signer, func() time.Time { return f.now })
	return f
}

// get serves a request for the raw target (not cleaned by any client).
func (f *handlerFixture) get(method, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

func (f *handlerFixture) query(class string) string {
	u := f.signer.URL(storeClass(class), f.now)
	return u[strings.Index(u, "?")+1:]
}

func TestHandlerPlaylist(t *testing.T) {
	f := newHandlerFixture(t)
	q := f.query("c1")
	w := f.get("GET", "/hls/c1/index.m3u8?"+q)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	for k, want := range map[string]string{
		"Content-Type":                playlistType,
		"Cache-Control":               "public, max-age=1",
		"Access-Control-Allow-Origin": "*",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	body := w.Body.String()
	var uris int
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		uris++
		if !strings.HasSuffix(line, ".ts?"+q) {
			t.Errorf("URI line %q does not carry %q", line, q)
		}
	}
	if uris != 2 {
		t.Errorf("playlist has %d URIs, want 2:\n%s", uris, body)
	}
	if !strings.Contains(body, "#EXT-X-DISCONTINUITY\n") || !strings.Contains(body, "#EXT-X-MEDIA-SEQUENCE:4\n") {
		t.Errorf("tags lost in the rewrite:\n%s", body)
	}
	head := f.get("HEAD", "/hls/c1/index.m3u8?"+q)
	if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("Content-Length") != w.Header().Get("Content-Length") {
		t.Errorf("HEAD: status %d, %d body bytes, length %q", head.Code, head.Body.Len(), head.Header().Get("Content-Length"))
	}
}

func TestHandlerSegment(t *testing.T) {
	f := newHandlerFixture(t)
	w := f.get("GET", "/hls/c1/seg-ab12-1-5.ts?"+f.query("c1"))
	if w.Code != http.StatusOK || w.Body.String() != "segment five" {
		t.Fatalf("status %d, body %q", w.Code, w.Body)
	}
	// Expiry is 13:00, 79 minutes after the fixture's clock.
	for k, want := range map[string]string{
		"Content-Type":                "video/mp2t",
		"Cache-Control":               "public, max-age=4740, immutable",
		"Access-Control-Allow-Origin": "*",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if w := f.get("OPTIONS", "/hls/c1/seg-ab12-1-5.ts"); w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("OPTIONS: status %d, headers %v", w.Code, w.Header())
	}
}

func TestHandlerRefuses(t *testing.T) {
	f := newHandlerFixture(t)
	q := f.query("c1")
	expired := f.signer.URL("c1", f.now.Add(-3*time.Hour))
	expired = expired[strings.Index(expired, "?")+1:]
	for _, tc := range []struct {
		name, method, target string
		status               int
		code                 string
	}{
		{"no signature", "GET", "/hls/c1/index.m3u8", 403, "FORBIDDEN"},
		{"signature of another class", "GET", "/hls/c1/index.m3u8?" + f.query("c2"), 403, "FORBIDDEN"},
		{"expired signature", "GET", "/hls/c1/seg-ab12-0-4.ts?" + expired, 403, "FORBIDDEN"},
		{"altered signature", "GET", "/hls/c1/index.m3u8?" + strings.Replace(q, "sig=", "sig=A", 1), 403, "FORBIDDEN"},
		{"class without a stream", "GET", "/hls/c2/index.m3u8?" + f.query("c2"), 404, "NOT_FOUND"},
		{"segment gone", "GET", "/hls/c1/seg-ab12-0-1.ts?" + q, 404, "NOT_FOUND"},
		{"unfinished segment", "GET", "/hls/c1/seg-ab12-1-6.ts.tmp?" + q, 404, "NOT_FOUND"},
		{"the SDP file", "GET", "/hls/c1/stream.sdp?" + q, 404, "NOT_FOUND"},
		{"link out of the root", "GET", "/hls/c1/seg-ab12-9-9.ts?" + q, 404, "NOT_FOUND"},
		{"dot-dot name", "GET", "/hls/c1/../secret.ts?" + q, 404, "NOT_FOUND"},
		{"dot-dot class", "GET", "/hls/../secret.ts?" + q, 404, "NOT_FOUND"},
		{"encoded slashes", "GET", "/hls/c1/..%2f..%2fsecret.ts?" + q, 404, "NOT_FOUND"},
		{"encoded dots as class", "GET", "/hls/%2e%2e/c1/index.m3u8?" + q, 404, "NOT_FOUND"},
		{"deeper path", "GET", "/hls/c1/x/index.m3u8?" + q, 404, "NOT_FOUND"},
		{"backslash", "GET", `/hls/c1/..%5c..%5csecret.ts?` + q, 404, "NOT_FOUND"},
		{"absolute path in name", "GET", "/hls/c1//etc/passwd?" + q, 404, "NOT_FOUND"},
		{"outside /hls/", "GET", "/other/c1/index.m3u8?" + q, 404, "NOT_FOUND"},
		{"write", "POST", "/hls/c1/index.m3u8?" + q, 405, "METHOD_NOT_ALLOWED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := f.get(tc.method, tc.target)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != tc.code || body.Error.Message == "" {
				t.Errorf("body %q (%v), want error code %s with a message", w.Body, err, tc.code)
			}
			if strings.Contains(w.Body.String(), "secret") && tc.code != "NOT_FOUND" {
				t.Errorf("body shows the secret file: %s", w.Body)
			}
			if w.Body.String() == "secret" {
				t.Fatal("the file outside the root was served")
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control of an error = %q, want no-store", got)
			}
		})
	}
}

func TestSignPlaylist(t *testing.T) {
	in := "#EXTM3U\r\n#EXT-X-MAP:URI=\"init.mp4\"\r\n#EXTINF:1.0,\r\nseg-a-0-1.ts\r\n#EXTINF:1.0,\r\nhttps://cdn.example/seg-a-0-2.ts?x=1\r\n"
	want := "#EXTM3U\r\n#EXT-X-MAP:URI=\"init.mp4?exp=1&sig=s\"\r\n#EXTINF:1.0,\r\nseg-a-0-1.ts?exp=1&sig=s\r\n#EXTINF:1.0,\r\nhttps://cdn.example/seg-a-0-2.ts?x=1&exp=1&sig=s\r\n"
	if got := string(SignPlaylist([]byte(in), "exp=1&sig=s")); got != want {
		t.Errorf("SignPlaylist =\n%q\nwant\n%q", got, want)
	}
}

func BenchmarkHandlerPlaylist(b *testing.B) {
	root := b.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "c1"), 0o750); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "c1", PlaylistName), []byte(testPlaylist), 0o600); err != nil {
		b.Fatal(err)
	}
	s := NewSigner(testKey)
	now := time.Now()
	h := NewHandler(root, s, func() time.Time { return now })
	req := httptest.NewRequest("GET", s.URL("c1", now), nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

func storeClass(s string) store.ClassID { return store.ClassID(s) }
