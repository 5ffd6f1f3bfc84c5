package hls

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// Cache lifetimes. The playlist changes every segment, so a cache may keep
// it one second (a CDN then asks the origin about once a second however
// many viewers poll it); a segment's name is never reused, so it never
// changes and may be kept until its signature expires.
const (
	playlistCacheControl = "public, max-age=1"
	maxSegmentAge        = 24 * time.Hour
)

// The media types of what the handler serves.
const (
	playlistType = "application/vnd.apple.mpegurl"
	segmentType  = "video/mp2t"
)

// handler serves root/{class}/ as /hls/{class}/.
type handler struct {
	root   string
	signer *Signer
	now    func() time.Time
}

// NewHandler returns the handler of GET /hls/{class}/index.m3u8 and
// /hls/{class}/<segment>, serving the files packagers write under
// root/{class}/. Every request must carry exp and sig signed by signer for
// the class (403 otherwise); 404 when the class has no stream. The
// playlist is rewritten so that each URI in it carries the request's exp
// and sig. now is the clock (time.Now when nil).
func NewHandler(root string, signer *Signer, now func() time.Time) http.Handler {
	if now == nil {
		now = time.Now
	}
	return &handler{root: root, signer: signer, now: now}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Segments are public to whoever holds the signed URL, which a page
	// on any origin (a CDN's, an embed) may hold.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Range")
		w.Header().Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use GET")
		return
	}
	class, name, ok := splitPath(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, apperr.NotFound.Code(), "no such HLS file")
		return
	}
	q := r.URL.Query()
	exp, sig := q.Get("exp"), q.Get("sig")
	now := h.now()
	if err := h.signer.Verify(class, exp, sig, now); err != nil {
		writeError(w, http.StatusForbidden, apperr.Forbidden.Code(), err.Error())
		return
	}
	root, err := os.OpenRoot(h.root)
	if err != nil {
		// No packager has run yet: no stream.
		writeError(w, http.StatusNotFound, apperr.NotFound.Code(), "no HLS stream for this class")
		return
	}
	defer root.Close()
	file := string(class) + "/" + name
	if name == PlaylistName {
		h.servePlaylist(w, r, root, file, exp, sig)
		return
	}
	f, err := root.Open(file)
	if err != nil {
		writeError(w, http.StatusNotFound, apperr.NotFound.Code(), "no such segment (it may have left the playlist)")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		writeError(w, http.StatusNotFound, apperr.NotFound.Code(), "no such segment")
		return
	}
	// Kept no longer than the signature lives: a cache would otherwise
	// serve the segment to URLs that no longer verify.
	age := time.Duration(0)
	if e, err := strconv.ParseInt(exp, 10, 64); err == nil {
		age = min(time.Unix(e, 0).Sub(now), maxSegmentAge)
	}
	w.Header().Set("Content-Type", segmentType)
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(max(int(age/time.Second), 1))+", immutable")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

func (h *handler) servePlaylist(w http.ResponseWriter, r *http.Request, root *os.Root, file, exp, sig string) {
	f, err := root.Open(file)
	if err != nil {
		writeError(w, http.StatusNotFound, apperr.NotFound.Code(), "no HLS stream for this class")
		return
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		writeError(w, http.StatusInternalServerError, apperr.Internal.Code(), "the playlist could not be read")
		return
	}
	body := SignPlaylist(buf.Bytes(), "exp="+exp+"&sig="+sig)
	w.Header().Set("Content-Type", playlistType)
	w.Header().Set("Cache-Control", playlistCacheControl)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// SignPlaylist appends query to every URI of an HLS playlist: the URI
// lines and the URI="..." attributes of tags (EXT-X-MAP, EXT-X-KEY), so
// that a player fetching them carries the playlist's own signature.
func SignPlaylist(m3u8 []byte, query string) []byte {
	var out bytes.Buffer
	out.Grow(len(m3u8) + 64*bytes.Count(m3u8, []byte("\n")))
	for line := range strings.Lines(string(m3u8)) {
		text := strings.TrimRight(line, "\r\n")
		eol := line[len(text):]
		switch {
		case text == "":
		case strings.HasPrefix(text, "#"):
			if i := strings.Index(text, `URI="`); i >= 0 {
				start := i + len(`URI="`)
				if j := strings.IndexByte(text[start:], '"'); j >= 0 {
					text = text[:start] + addQuery(text[start:start+j], query) + text[start+j:]
				}
			}
		default:
			text = addQuery(text, query)
		}
		out.WriteString(text)
		out.WriteString(eol)
	}
	return out.Bytes()
}

func addQuery(uri, query string) string {
	if strings.Contains(uri, "?") {
		return uri + "&" + query
	}
	return uri + "?" + query
}

// splitPath parses "/hls/{class}/{name}", accepting only names a packager
// writes (the playlist and its segments), so that no request reaches any
// other file, wherever a path might point.
func splitPath(p string) (store.ClassID, string, bool) {
	rest, ok := strings.CutPrefix(p, "/hls/")
	if !ok {
		return "", "", false
	}
	class, name, ok := strings.Cut(rest, "/")
	if !ok || !validClass(class) || path.Base(name) != name {
		return "", "", false
	}
	if name != PlaylistName && !segmentName(name) {
		return "", "", false
	}
	return store.ClassID(class), name, true
}

// validClass accepts the characters of the store's IDs and nothing that
// could mean a path: no dots, slashes or backslashes.
func validClass(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	body, _ := json.Marshal(map[string]map[string]string{"error": {"code": code, "message": message}})
	w.Header().Set("Content-Type", "application/json")
	// An error is about now: a cache must not keep "no stream yet" or a
	// refusal for the viewers after.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
