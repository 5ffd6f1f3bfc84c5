package web

import (
	"net/http"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/store"
)

// SignalPath is where the live page opens its signalling WebSocket
// (docs/protocol.md); the server mounts the signal handler there.
const SignalPath = "/rtc"

// livePage is the classroom: a server-rendered shell that the modules in
// static/live/ bring to life. The join token is rendered into the page,
// never into a URL, so that it stays out of logs and browser history.
type livePage struct {
	base
	Class      store.LiveClass
	Grant      classes.JoinGrant
	SignalPath string
	Reactions  []string
}

// Hosts reports whether the viewer joins as a host, which decides whether
// the host panels are on the page at all: an attendee's page does not
// carry controls the room would refuse anyway.
func (p livePage) Hosts() bool { return p.Grant.Role == jointoken.RoleHost }

func (u *UI) live(w http.ResponseWriter, r *http.Request) {
	a, ok := requireSignIn(w, r)
	if !ok {
		return
	}
	id := store.ClassID(r.PathValue("id"))
	c, err := u.cfg.Classes.GetClass(r.Context(), a, id)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if c.Service == store.ServiceIVS {
		// A broadcast has no classroom: its audience watches, and its
		// hosts find the presenter page from the class page.
		http.Redirect(w, r, "/classes/"+string(c.ID)+"/watch", http.StatusSeeOther)
		return
	}
	g, err := u.cfg.Classes.GenerateJoinToken(r.Context(), a, id)
	if err != nil {
		p, lerr := u.loadClassPage(r, id)
		if lerr != nil || apperr.KindOf(err) == apperr.Internal {
			u.fail(w, r, err)
			return
		}
		p.Alert = "You cannot join yet: " + message(err)
		u.render(w, r, "class", statusOf(err), p)
		return
	}
	p := livePage{
		base: u.base(r, c.Title+" (live)"), Class: c, Grant: g,
		SignalPath: SignalPath, Reactions: room.Reactions(),
	}
	u.render(w, r, "live", http.StatusOK, p)
}
