package audience

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/liveclass/liveclass/internal/keepalive"
	"github.com/liveclass/liveclass/internal/ratelimit"
	"github.com/liveclass/liveclass/internal/store"
)

// Frames: when a viewer's writer finds several messages waiting, it sends
// them in one WebSocket frame separated by '\n' (JSON never holds a raw
// newline), up to these limits. A busy class then costs a viewer one
// write per batch instead of one per message.
const (
	maxBatch      = 64
	maxBatchBytes = 32 << 10
)

// final is the last message of a connection and the close that follows.
type final struct {
	data   []byte
	code   websocket.StatusCode
	reason string
}

// conn is one audience WebSocket. The handler's goroutine reads; one
// writer goroutine alone writes; a pinger keeps it alive. Everyone else
// hands it bytes through send, which never blocks.
type conn struct {
	h    *Hub
	ws   *websocket.Conn
	hall *hall
	user store.UserID
	name string
	host bool
	stay store.AttendanceID
	// joined is set once the connection is in its hall (Close then
	// finishes it there; before, Close just drops it).
	joined atomic.Bool

	out  chan []byte
	done chan struct{} // closed when the connection is over
	over sync.Once

	lastMu  sync.Mutex
	last    *final
	lastSet chan struct{} // closed once last is set

	// behind is when the queue first refused a message since it was last
	// under half full (Unix nanoseconds, 0 when keeping up, -1 once
	// dropped for it).
	behind atomic.Int64

	bucket ratelimit.Bucket // the reader's own
	seq    uint64           // order of joining the hall; guarded by the hall's lock
}

func newConn(h *Hub, ws *websocket.Conn) *conn {
	return &conn{
		h: h, ws: ws,
		out:     make(chan []byte, h.opt.SendQueue),
		done:    make(chan struct{}),
		lastSet: make(chan struct{}),
		bucket:  ratelimit.New(h.opt.MessageRate, h.opt.MessageBurst),
	}
}

// send queues b without blocking. A full queue drops b; a viewer whose
// queue stays full for SlowTimeout is disconnected. b is shared with
// other connections: nobody may change it.
func (c *conn) send(b []byte) {
	if !c.queue(b) {
		return
	}
	c.h.sentMsgs.Add(1)
}

// queue is send without counting the message: a broadcast counts its
// recipients once, not with an atomic add per viewer. It reports whether
// b was queued.
func (c *conn) queue(b []byte) bool {
	select {
	case c.out <- b:
		return true
	default:
	}
	c.full()
	return false
}

// full handles a message the queue refused.
func (c *conn) full() {
	c.h.dropped.Add(1)
	now := time.Now().UnixNano()
	since := c.behind.Load()
	if since == 0 {
		c.behind.CompareAndSwap(0, now)
		return
	}
	if time.Duration(now-since) > c.h.opt.SlowTimeout {
		c.dropSlow()
	}
}

// checkSlow disconnects c if its queue has been refusing messages for
// longer than SlowTimeout: the hub's ticker calls it, for a viewer that
// stopped reading when nothing more is sent.
func (c *conn) checkSlow(now time.Time) {
	if since := c.behind.Load(); since > 0 && time.Duration(now.UnixNano()-since) > c.h.opt.SlowTimeout {
		c.dropSlow()
	}
}

func (c *conn) dropSlow() {
	c.abort()
	if c.behind.Swap(-1) != -1 {
		c.h.tooSlow.Add(1)
		c.h.log.Warn("audience: viewer too slow, disconnected", "class", c.hall.id, "user", c.user)
	}
}

// finish queues the connection's last message and close; later calls do
// nothing.
func (c *conn) finish(data []byte, code websocket.StatusCode, reason string) {
	c.lastMu.Lock()
	defer c.lastMu.Unlock()
	if c.last != nil {
		return
	}
	c.last = &final{data: data, code: code, reason: reason}
	close(c.lastSet)
}

// closing reports whether the connection has been told its last message.
func (c *conn) closing() bool {
	c.lastMu.Lock()
	defer c.lastMu.Unlock()
	return c.last != nil
}

// abort ends the connection now, without a close handshake: the client
// is not reading. It never blocks.
func (c *conn) abort() {
	c.over.Do(func() {
		close(c.done)
		go func() { _ = c.ws.CloseNow() }()
	})
}

func (c *conn) writeLoop() {
	var batch []byte
	var lastWrite time.Time
	gap := c.h.opt.Coalesce
	var pause *time.Timer
	if gap > 0 {
		pause = time.NewTimer(gap)
		pause.Stop()
		defer pause.Stop()
	}
	for {
		select {
		case <-c.done:
			return
		case <-c.lastSet:
			c.writeLast()
			return
		case b := <-c.out:
			// Messages closer together than gap wait for the rest of it
			// and go out in one frame: one write instead of several.
			if wait := gap - time.Since(lastWrite); gap > 0 && wait > 0 {
				pause.Reset(wait)
				select {
				case <-pause.C:
				case <-c.done:
					return
				}
			}
			data := b
			if n := len(c.out); n > 0 {
				batch = append(batch[:0], b...)
				for i := 0; i < min(n, maxBatch-1) && len(batch) < maxBatchBytes; i++ {
					batch = append(batch, '\n')
					batch = append(batch, <-c.out...)
				}
				data = batch
			}
			if !c.write(data) {
				c.abort()
				return
			}
			if gap > 0 {
				lastWrite = time.Now()
			}
			// Back under half its queue: the viewer caught up.
			if len(c.out) < cap(c.out)/2 && c.behind.Load() > 0 {
				c.behind.Store(0)
			}
		}
	}
}

func (c *conn) write(data []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.h.opt.WriteTimeout)
	defer cancel()
	c.h.frames.Add(1)
	return c.ws.Write(ctx, websocket.MessageText, data) == nil
}

// writeLast writes what is still queued, then the last message, then
// closes with its code.
func (c *conn) writeLast() {
	c.lastMu.Lock()
	l := c.last
	c.lastMu.Unlock()
	for n := len(c.out); n > 0; n-- {
		if !c.write(<-c.out) {
			c.abort()
			return
		}
	}
	if l.data != nil && !c.write(l.data) {
		c.abort()
		return
	}
	c.over.Do(func() { close(c.done) })
	_ = c.ws.Close(l.code, l.reason)
}

func (c *conn) pingLoop() {
	if keepalive.Run(c.ws, c.h.opt.PingInterval, c.done) != nil {
		c.abort()
	}
}
