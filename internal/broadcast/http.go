package broadcast

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
)

// The endpoints' paths; each is followed by the class ID, and a session's
// resource URL (the Location) by a resource ID after that.
const (
	WHIPPath = "/whip/"
	WHEPPath = "/whep/"
)

// Handler serves WHIP under WHIPPath and WHEP under WHEPPath. It does its
// own authorization (a Bearer token on every request), so it is mounted
// before the cookie sign-in, and answers CORS preflights, so that a
// player on another origin can use it.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(WHIPPath+"{class}", s.whipSession)
	mux.HandleFunc(WHIPPath+"{class}/{resource}", s.whipResource)
	mux.HandleFunc(WHEPPath+"{class}", s.whepSession)
	mux.HandleFunc(WHEPPath+"{class}/{resource}", s.whepResource)
	return cors(mux)
}

// cors lets pages of any origin publish and play: every request carries
// its credential in the Authorization header, never in a cookie, so
// another origin gains nothing it could not do with the token anyway.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "Location, Link, ETag, Accept-Patch")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "POST, DELETE, PATCH, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
			h.Set("Access-Control-Max-Age", "86400")
		}
		next.ServeHTTP(w, r)
	})
}

// errorBody is the JSON error answer, as the other endpoints write it.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	HLS string `json:"hls,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // an error means the client went away
}

// fail answers err by its kind; internal errors are logged, not shown.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	k := apperr.KindOf(err)
	var e *apperr.Error
	if k == apperr.Internal || !errors.As(err, &e) {
		if errors.Is(err, context.Canceled) {
			return
		}
		s.log.Error("broadcast: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, k.Code(), "internal server error")
		return
	}
	if k == apperr.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="liveclass"`)
	}
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	writeError(w, k.HTTPStatus(), k.Code(), msg)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "allowed: "+allow)
}

// start begins every WHIP and WHEP request: it answers a CORS preflight,
// refuses any method but method, and reads the class and the Bearer
// credential. ok is false when the request has been answered.
func (s *Service) start(w http.ResponseWriter, r *http.Request, method string) (class store.ClassID, cred string, ok bool) {
	allow := method + ", OPTIONS"
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Allow", allow)
		w.WriteHeader(http.StatusNoContent)
		return "", "", false
	case method:
	default:
		methodNotAllowed(w, allow)
		return "", "", false
	}
	class = store.ClassID(r.PathValue("class"))
	cred, err := bearer(r)
	if err != nil {
		s.fail(w, r, err)
		return "", "", false
	}
	return class, cred, true
}

// writeAnswer answers a session's offer: the SDP answer, and the resource
// URL that a DELETE ends the session at.
func writeAnswer(w http.ResponseWriter, m Media, location, answer string) {
	// RFC 9725 §4.6: the ICE servers (the embedded TURN server) go with
	// the answer, so that an encoder on a network that blocks UDP to the
	// media port can relay without being configured for it.
	if l, ok := m.(ICEServerLister); ok {
		for _, srv := range l.ICEServers() {
			for _, u := range srv.URLs {
				v := "<" + u + `>; rel="ice-server"`
				if srv.Username != "" {
					v += "; username=" + strconv.Quote(srv.Username)
				}
				if cred, ok := srv.Credential.(string); ok && cred != "" {
					v += "; credential=" + strconv.Quote(cred) + `; credential-type="password"`
				}
				w.Header().Add("Link", v)
			}
		}
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", location)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// bearer returns the request's Bearer credential.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, cred, ok := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return "", apperr.New(apperr.Unauthenticated, "an Authorization: Bearer credential is required")
	}
	return cred, nil
}

// readOffer checks the content type and reads the SDP offer.
func (s *Service) readOffer(w http.ResponseWriter, r *http.Request) (string, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/sdp" {
		writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "the body must be an SDP offer (Content-Type: application/sdp)")
		return "", false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "BAD_USER_INPUT", "the offer is too large")
			return "", false
		}
		s.fail(w, r, err)
		return "", false
	}
	offer := string(body)
	if !strings.HasPrefix(strings.TrimSpace(offer), "v=0") {
		writeError(w, http.StatusBadRequest, "BAD_USER_INPUT", "the body is not an SDP offer")
		return "", false
	}
	return offer, true
}

// broadcastClass reads the class and refuses what is not a broadcast that
// can still stream.
func (s *Service) broadcastClass(ctx context.Context, id store.ClassID) (store.LiveClass, error) {
	c, err := s.opt.Store.ClassByID(ctx, id)
	if apperr.Is(err, apperr.NotFound) || (err == nil && c.Service != store.ServiceIVS) {
		return c, errNotBroadcast
	}
	if err != nil {
		return c, err
	}
	switch c.Status {
	case store.StatusEnded:
		return c, apperr.New(apperr.Conflict, "the class has ended")
	case store.StatusCancelled:
		return c, apperr.New(apperr.Conflict, "the class was cancelled")
	}
	return c, nil
}

// isJoinToken tells a join token (a JWT: three dot-separated parts) from a
// stream key (base32, no dots).
func isJoinToken(cred string) bool { return strings.Count(cred, ".") == 2 }

// verifyToken checks a join token for the class.
func (s *Service) verifyToken(cred string, class store.ClassID) (jointoken.Claims, error) {
	cl, err := s.opt.Tokens.Verify(cred, s.opt.Now())
	if err != nil {
		return cl, apperr.New(apperr.Unauthenticated, "the join token is invalid or expired")
	}
	if cl.ClassID != string(class) {
		return cl, apperr.New(apperr.Forbidden, "the join token is for another class")
	}
	return cl, nil
}

// checkPublisher checks a WHIP credential: a stream key of the class, or a
// host's join token for it; and that the class's join window has opened.
func (s *Service) checkPublisher(ctx context.Context, cred string, c store.LiveClass) error {
	if isJoinToken(cred) {
		cl, err := s.verifyToken(cred, c.ID)
		if err != nil {
			return err
		}
		if cl.Role != jointoken.RoleHost {
			return apperr.New(apperr.Forbidden, "only the class's hosts publish its stream")
		}
	} else if err := s.opt.Keys.CheckStreamKey(ctx, c.ID, cred); err != nil {
		return err
	}
	if opens, _ := s.opt.Keys.JoinWindow(c); s.opt.Now().Before(opens) {
		return apperr.New(apperr.Forbidden, "the class opens at %s", opens.UTC().Format(time.RFC3339))
	}
	return nil
}

// lockOpenChannel locks s.mu and returns class's channel, open to a new
// publish or viewer, with s.mu still held: the caller decides on the
// channel's state and reserves its place before anything else can change
// it. When the channel is not open it unlocks s.mu, answers why and
// returns nil.
func (s *Service) lockOpenChannel(w http.ResponseWriter, r *http.Request, class store.ClassID) *channel {
	s.mu.Lock()
	ch := s.channelLocked(class)
	if ch == nil {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "the server is shutting down")
		return nil
	}
	if ch.ended {
		s.mu.Unlock()
		s.fail(w, r, apperr.New(apperr.Conflict, "the class has ended"))
		return nil
	}
	return ch
}

func newResourceID() string { return strings.ToLower(rand.Text()) }

// media returns the media server, or answers 503.
func (s *Service) mediaOr503(w http.ResponseWriter) (Media, bool) {
	s.mu.Lock()
	m, closed := s.media, s.closed
	s.mu.Unlock()
	if m == nil || closed {
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "the media server is not running")
		return nil, false
	}
	return m, true
}

// whipSession is POST /whip/{class}: start a publish.
func (s *Service) whipSession(w http.ResponseWriter, r *http.Request) {
	class, cred, ok := s.start(w, r, http.MethodPost)
	if !ok {
		return
	}
	ctx := r.Context()
	offer, ok := s.readOffer(w, r)
	if !ok {
		return
	}
	c, err := s.broadcastClass(ctx, class)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkPublisher(ctx, cred, c); err != nil {
		s.fail(w, r, err)
		return
	}
	m, ok := s.mediaOr503(w)
	if !ok {
		return
	}

	// Take the channel: refused while another publish holds it, replacing
	// one whose connection is gone.
	now := s.opt.Now()
	p := &publisher{id: newResourceID(), bearer: sha256.Sum256([]byte(cred)), started: now}
	ch := s.lockOpenChannel(w, r, class)
	if ch == nil {
		return
	}
	old := ch.pub
	if old != nil && s.holds(old, now) {
		s.mu.Unlock()
		s.fail(w, r, apperr.New(apperr.Conflict, "another publisher is streaming to this class; stop it first, or wait until its connection is gone"))
		return
	}
	ch.pub = p
	s.mu.Unlock()
	if old != nil {
		s.log.Info("broadcast: a new publish replaces one whose connection is gone", "class", class, "old", old.id, "new", p.id)
		ch.do(func() { ch.publisherGone(old) })
	}

	ing, answer, err := m.Ingest(class, publisherID, offer)
	if err != nil {
		s.mu.Lock()
		if ch.pub == p {
			ch.pub = nil
		}
		s.mu.Unlock()
		s.fail(w, r, err)
		return
	}
	s.mu.Lock()
	current := ch.pub == p
	if current {
		p.ingest = ing
	}
	s.mu.Unlock()
	if !current { // ended, stopped or shut down while the offer was answered
		ing.Close()
		s.fail(w, r, apperr.New(apperr.Conflict, "the publish was stopped, or the class ended, while the offer was being answered"))
		return
	}
	s.log.Info("broadcast: publish started", "class", class, "publish", p.id, "stream_key", !isJoinToken(cred))
	go func() {
		<-ing.Done()
		ch.do(func() { ch.publisherGone(p) })
	}()
	writeAnswer(w, m, WHIPPath+string(class)+"/"+p.id, answer)
}

// holds reports whether publisher p still holds its channel: its offer is
// being answered, it is connected, or it is connecting within the connect
// window. s.mu is held.
func (s *Service) holds(p *publisher, now time.Time) bool {
	if p.ingest == nil {
		return true
	}
	select {
	case <-p.ingest.Done():
		return false
	default:
	}
	return p.ingest.Connected() || now.Sub(p.started) < s.opt.ConnectWindow
}

// whipResource is /whip/{class}/{resource}: DELETE stops the publish;
// PATCH (trickle, ICE restart) is not supported, every candidate being in
// the answer.
func (s *Service) whipResource(w http.ResponseWriter, r *http.Request) {
	class, cred, ok := s.start(w, r, http.MethodDelete)
	if !ok {
		return
	}
	id := r.PathValue("resource")
	sum := sha256.Sum256([]byte(cred))
	s.mu.Lock()
	ch := s.channels[class]
	var p *publisher
	if ch != nil && ch.pub != nil && ch.pub.id == id {
		p = ch.pub
	}
	if p != nil && subtle.ConstantTimeCompare(p.bearer[:], sum[:]) != 1 {
		s.mu.Unlock()
		s.fail(w, r, apperr.New(apperr.Unauthenticated, "not the credential this publish was started with"))
		return
	}
	if p != nil {
		p.stopping = true
	}
	s.mu.Unlock()
	if p == nil {
		s.fail(w, r, apperr.New(apperr.NotFound, "no such publish"))
		return
	}
	s.log.Info("broadcast: publish stopped", "class", class, "publish", id)
	ch.do(func() { ch.publisherGone(p) })
	w.WriteHeader(http.StatusOK)
}

// whepSession is POST /whep/{class}: start a viewer.
func (s *Service) whepSession(w http.ResponseWriter, r *http.Request) {
	class, cred, ok := s.start(w, r, http.MethodPost)
	if !ok {
		return
	}
	ctx := r.Context()
	cl, err := s.verifyToken(cred, class)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	offer, ok := s.readOffer(w, r)
	if !ok {
		return
	}
	if _, err := s.broadcastClass(ctx, class); err != nil {
		s.fail(w, r, err)
		return
	}
	if cl.Role != jointoken.RoleHost {
		if err := s.checkNotBanned(ctx, class, store.UserID(cl.UserID)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	m, ok := s.mediaOr503(w)
	if !ok {
		return
	}

	ch := s.lockOpenChannel(w, r, class)
	if ch == nil {
		return
	}
	if len(ch.viewers)+ch.reserved >= s.opt.MaxWebRTCViewers {
		s.mu.Unlock()
		var b errorBody
		b.Error.Code = "FULL"
		b.Error.Message = "the WebRTC fan-out of this class is full; play the HLS stream"
		if s.opt.HLSURL != nil {
			b.HLS = s.opt.HLSURL(class, s.opt.Now())
		}
		w.Header().Set("Retry-After", "30")
		writeJSON(w, http.StatusServiceUnavailable, b)
		return
	}
	ch.reserved++
	s.mu.Unlock()

	v := &viewer{id: newResourceID(), user: cl.UserID}
	conn, answer, err := m.View(class, sfu.ParticipantID(viewerPrefix+v.id), offer)
	s.mu.Lock()
	ch.reserved--
	ended := ch.ended || s.closed
	if err == nil && !ended {
		v.conn = conn
		ch.viewers[v.id] = v
	}
	s.mu.Unlock()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ended {
		conn.Close()
		s.fail(w, r, apperr.New(apperr.Conflict, "the class has ended"))
		return
	}
	go func() {
		<-conn.Done()
		s.mu.Lock()
		if !v.closed {
			v.closed = true
			delete(ch.viewers, v.id)
		}
		s.mu.Unlock()
	}()
	writeAnswer(w, m, WHEPPath+string(class)+"/"+v.id, answer)
}

// checkNotBanned refuses a user a host has banned from the class (a
// host's own token passes, as it does in the audience).
func (s *Service) checkNotBanned(ctx context.Context, class store.ClassID, user store.UserID) error {
	bans, err := s.opt.Store.AudienceBans(ctx, class)
	if err != nil {
		return fmt.Errorf("broadcast: read bans: %w", err)
	}
	for _, b := range bans {
		if b.UserID == user {
			return apperr.New(apperr.Forbidden, "a host has banned you from this class")
		}
	}
	return nil
}

// whepResource is /whep/{class}/{resource}: DELETE ends the viewer.
func (s *Service) whepResource(w http.ResponseWriter, r *http.Request) {
	class, cred, ok := s.start(w, r, http.MethodDelete)
	if !ok {
		return
	}
	cl, err := s.verifyToken(cred, class)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id := r.PathValue("resource")
	s.mu.Lock()
	var v *viewer
	if ch := s.channels[class]; ch != nil {
		v = ch.viewers[id]
	}
	if v != nil && v.user != cl.UserID {
		s.mu.Unlock()
		s.fail(w, r, apperr.New(apperr.Forbidden, "this viewer session is someone else's"))
		return
	}
	if v != nil {
		v.closed = true
		delete(s.channels[class].viewers, id)
	}
	s.mu.Unlock()
	if v == nil {
		s.fail(w, r, apperr.New(apperr.NotFound, "no such viewer session"))
		return
	}
	v.conn.Close()
	w.WriteHeader(http.StatusOK)
}
