package web

import (
	"net/http"
	"strings"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/store"
)

// The broadcast endpoints the presenter and viewer pages speak to
// (docs/protocol.md); the server mounts the broadcast and audience
// handlers there.
const (
	// AudiencePath is the audience WebSocket: chat, polls, reactions,
	// viewer count and stream state for a broadcast class.
	AudiencePath = "/audience"
	// WHIPPath is the prefix of the WHIP ingest endpoint, followed by the
	// class ID.
	WHIPPath = "/whip/"
	// WHEPPath is the prefix of the WHEP playback endpoint, followed by the
	// class ID.
	WHEPPath = "/whep/"
)

// broadcastPage is the presenter's page of a broadcast (IVS) class: the
// preview and Go live, the stream keys and OBS settings, chat moderation,
// polls, the viewer count and the stream's health. Like the classroom, the
// host join token is rendered into the page and never into a URL.
type broadcastPage struct {
	base
	Class        store.LiveClass
	Grant        classes.JoinGrant
	AudiencePath string
	WHIPURL      string // absolute, for OBS and for the page's own publish
	Keys         []store.StreamKey
	NewKey       *classes.NewStreamKey // shown once, right after it is created
	KeysError    string
}

// ActiveKeys counts the keys that still let an encoder publish.
func (p broadcastPage) ActiveKeys() int {
	n := 0
	for _, k := range p.Keys {
		if k.RevokedAt == nil {
			n++
		}
	}
	return n
}

// broadcastClass loads the class id for a signed-in actor and refuses what
// is not a broadcast class; on refusal it has written the response. An
// interactive class is sent to its classroom rather than refused: the
// address was only mistyped.
func (u *UI) broadcastClass(w http.ResponseWriter, r *http.Request) (auth.Actor, store.LiveClass, bool) {
	a, ok := requireSignIn(w, r)
	if !ok {
		return a, store.LiveClass{}, false
	}
	id := store.ClassID(r.PathValue("id"))
	c, err := u.cfg.Classes.GetClass(r.Context(), a, id)
	if err != nil {
		u.fail(w, r, err)
		return a, c, false
	}
	if c.Service != store.ServiceIVS {
		if r.Method == http.MethodGet {
			http.Redirect(w, r, "/classes/"+string(c.ID)+"/live", http.StatusSeeOther)
		} else {
			u.fail(w, r, apperr.New(apperr.Conflict, "this class is interactive, not a broadcast"))
		}
		return a, c, false
	}
	return a, c, true
}

// grant asks for the actor's join token, and renders the class page with
// the reason when there is none (the class has not opened, has ended, or
// the actor is not enrolled).
func (u *UI) grant(w http.ResponseWriter, r *http.Request, a auth.Actor, c store.LiveClass) (classes.JoinGrant, bool) {
	g, err := u.cfg.Classes.GenerateJoinToken(r.Context(), a, c.ID)
	if err != nil {
		p, lerr := u.loadClassPage(r, c.ID)
		if lerr != nil || apperr.KindOf(err) == apperr.Internal {
			u.fail(w, r, err)
			return g, false
		}
		p.Alert = "You cannot join yet: " + message(err)
		u.render(w, r, "class", statusOf(err), p)
		return g, false
	}
	return g, true
}

func (u *UI) broadcast(w http.ResponseWriter, r *http.Request) {
	u.presenter(w, r, nil, "")
}

// presenter renders the presenter page, with a key just created (shown
// once) or the reason a key action failed.
func (u *UI) presenter(w http.ResponseWriter, r *http.Request, created *classes.NewStreamKey, keysErr string) {
	a, c, ok := u.broadcastClass(w, r)
	if !ok {
		return
	}
	g, ok := u.grant(w, r, a, c)
	if !ok {
		return
	}
	if g.Role != jointoken.RoleHost {
		u.forbid(w, r, "Only the class's instructor and admins present a broadcast. Watch it instead.")
		return
	}
	keys, err := u.cfg.Classes.StreamKeys(r.Context(), a, c.ID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	p := broadcastPage{
		base: u.base(r, c.Title+" (presenter)"), Class: c, Grant: g,
		AudiencePath: AudiencePath, WHIPURL: u.ingestURL(r, c.ID),
		Keys: keys, NewKey: created, KeysError: keysErr,
	}
	status := http.StatusOK
	if keysErr != "" {
		status = http.StatusUnprocessableEntity
	}
	u.render(w, r, "broadcast", status, p)
}

// createStreamKey makes a key and shows it, once, on the page the POST
// answers: a redirect would have to carry the secret in a URL.
func (u *UI) createStreamKey(w http.ResponseWriter, r *http.Request) {
	a, c, ok := u.broadcastClass(w, r)
	if !ok || !u.postForm(w, r) {
		return
	}
	k, err := u.cfg.Classes.CreateStreamKey(r.Context(), a, c.ID)
	if err != nil {
		if kind := apperr.KindOf(err); kind == apperr.Internal || kind == apperr.Forbidden || kind == apperr.NotFound {
			u.fail(w, r, err)
			return
		}
		u.presenter(w, r, nil, message(err))
		return
	}
	u.presenter(w, r, &k, "")
}

// revokeStreamKey revokes one of the class's keys and goes back to the
// presenter page.
func (u *UI) revokeStreamKey(w http.ResponseWriter, r *http.Request) {
	a, c, ok := u.broadcastClass(w, r)
	if !ok || !u.postForm(w, r) {
		return
	}
	id := store.StreamKeyID(r.PathValue("key"))
	// The key must be this class's: the form's address names the class,
	// and a key of another class revoked from here would surprise.
	keys, err := u.cfg.Classes.StreamKeys(r.Context(), a, c.ID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	found := false
	for _, k := range keys {
		found = found || k.ID == id
	}
	if !found {
		u.fail(w, r, apperr.New(apperr.NotFound, "this class has no such stream key"))
		return
	}
	if _, err := u.cfg.Classes.RevokeStreamKey(r.Context(), a, id); err != nil {
		if apperr.KindOf(err) == apperr.Internal {
			u.fail(w, r, err)
			return
		}
		u.presenter(w, r, nil, message(err))
		return
	}
	http.Redirect(w, r, "/classes/"+string(c.ID)+"/broadcast?revoked=1#stream-keys", http.StatusSeeOther)
}

// watchPage is the viewer's page of a broadcast class: the player (WHEP,
// or HLS when WebRTC fails or the server is full), chat, reactions, polls
// and the viewer count.
type watchPage struct {
	base
	Class        store.LiveClass
	Grant        classes.JoinGrant
	AudiencePath string
	WHEPPath     string
	HLSURL       string // signed; empty when the server packages no HLS
	Reactions    []string
	Hosts        bool
}

func (u *UI) watch(w http.ResponseWriter, r *http.Request) {
	a, c, ok := u.broadcastClass(w, r)
	if !ok {
		return
	}
	g, ok := u.grant(w, r, a, c)
	if !ok {
		return
	}
	p := watchPage{
		base: u.base(r, c.Title+" (live)"), Class: c, Grant: g,
		AudiencePath: AudiencePath, WHEPPath: WHEPPath + string(c.ID),
		Reactions: room.Reactions(), Hosts: g.Role == jointoken.RoleHost,
	}
	if u.cfg.HLSURL != nil {
		p.HLSURL = u.cfg.HLSURL(c.ID, u.cfg.Classes.Now())
	}
	u.render(w, r, "watch", http.StatusOK, p)
}

// ingestURL is the class's absolute WHIP endpoint: the configured public
// URL's, or, when none is configured (tests, a first try on a laptop), the
// address the browser reached this server at, which is also where an
// encoder on the presenter's machine reaches it.
func (u *UI) ingestURL(r *http.Request, class store.ClassID) string {
	url := u.cfg.Classes.IngestURL(class)
	if strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://") {
		return url
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + WHIPPath + string(class)
}
