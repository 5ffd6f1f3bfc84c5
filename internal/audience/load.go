package audience

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// LoadOptions configures Load.
type LoadOptions struct {
	// URL is the audience WebSocket, e.g. ws://localhost:8080/audience.
	URL string
	// Tokens holds one join token per client, all for the same class.
	Tokens []string
	// Senders is how many of the clients (the first ones) send chat
	// messages, taking turns (100, at most len(Tokens)). Each user may
	// send Options.ChatRate: keep Rate/Senders under it.
	Senders int
	// Rate is chat messages per second over all senders (100).
	Rate float64
	// JoinRate is hellos per second while the clients connect (500).
	JoinRate float64
	// Warmup runs the load before measuring (2 s); Duration measures (20 s);
	// Drain waits at most this long for the last messages after it (2 s).
	Warmup, Duration, Drain time.Duration
	// Window, if set, is called when the measured window opens (true) and
	// closes (false), so that the caller can read CPU clocks around it.
	Window func(open bool)
}

// LoadReport is what Load measured over its window.
type LoadReport struct {
	Clients, Joined int
	// Sent is the chat messages sent in the window, Refused those the
	// server refused (rate limits).
	Sent, Refused uint64
	// Expected is deliveries due: accepted messages × clients connected.
	// Received counts those that arrived, Late those after Drain.
	Expected, Received uint64
	// Closed is connections the server closed during the run.
	Closed int
	// Latency from just before a sender's write to a receiver's read of
	// the frame holding the message, over every delivery.
	P50, P90, P99, Max time.Duration
	Window             time.Duration
}

// Deliveries per second in the window.
func (r LoadReport) DeliveriesPerSecond() float64 {
	return float64(r.Received) / r.Window.Seconds()
}

// histogram of latencies: 100 µs buckets up to 2 s, one overflow bucket.
const (
	histStep    = 100 * time.Microsecond
	histBuckets = int(2*time.Second/histStep) + 1
)

// loadClient is one connection of the load: raw frames, no JSON decode
// beyond finding the send stamps in them.
type loadClient struct {
	ws     *websocket.Conn
	hist   []uint32
	max    time.Duration
	got    atomic.Uint64 // stamped messages of the window received
	closed bool
}

// stampPrefix marks a load message's send time (Unix nanoseconds) in its
// text.
var stampPrefix = []byte(`"text":"lt:`)

// Load connects len(Tokens) clients to an audience, has Senders of them
// chat at Rate messages per second and measures the delivery of every
// message to every client. Clients are cheap: each reads whole frames
// into one buffer and only scans them for the send stamps, so that the
// tester is not what limits the measurement.
func Load(ctx context.Context, o LoadOptions) (LoadReport, error) {
	if len(o.Tokens) == 0 || o.URL == "" {
		return LoadReport{}, errors.New("audience load: URL and tokens are required")
	}
	if o.Senders <= 0 {
		o.Senders = 100
	}
	o.Senders = min(o.Senders, len(o.Tokens))
	if o.Rate <= 0 {
		o.Rate = 100
	}
	if o.JoinRate <= 0 {
		o.JoinRate = 500
	}
	setDur(&o.Warmup, 2*time.Second)
	setDur(&o.Duration, 20*time.Second)
	setDur(&o.Drain, 2*time.Second)

	clients := make([]*loadClient, len(o.Tokens))
	rep := LoadReport{Clients: len(o.Tokens)}
	// Join, paced.
	pace := time.NewTicker(time.Duration(float64(time.Second) / o.JoinRate))
	var wg sync.WaitGroup
	var joinErr atomic.Value
	for i, tok := range o.Tokens {
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-pace.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialLoad(ctx, o.URL, tok)
			if err != nil {
				joinErr.Store(err)
				return
			}
			clients[i] = c
		}()
	}
	pace.Stop()
	wg.Wait()
	if err, _ := joinErr.Load().(error); err != nil {
		for _, c := range clients {
			if c != nil {
				_ = c.ws.CloseNow()
			}
		}
		return rep, fmt.Errorf("audience load: join: %w", err)
	}
	rep.Joined = len(clients)

	// Receive.
	var from, to atomic.Int64 // the window, in Unix nanoseconds
	from.Store(1<<63 - 1)
	var refused atomic.Uint64
	var readers sync.WaitGroup
	for _, c := range clients {
		readers.Add(1)
		go func() {
			defer readers.Done()
			c.read(&from, &to, &refused)
		}()
	}

	// Send: one pacer, senders in turn; each message carries its send time.
	start := time.Now()
	window := [2]time.Time{start.Add(o.Warmup), start.Add(o.Warmup + o.Duration)}
	from.Store(window[0].UnixNano())
	to.Store(window[1].UnixNano())
	// Each message has its due time; a pacer that fell behind (a busy
	// machine) catches up rather than skipping, so that the rate holds.
	every := time.Duration(float64(time.Second) / o.Rate)
	tick := time.NewTimer(every)
	var sent uint64
	buf := make([]byte, 0, 64)
	opened := false
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i+1) * every)
		if wait := time.Until(due); wait > 0 {
			tick.Reset(wait)
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
		now := time.Now()
		if !now.Before(window[1]) || ctx.Err() != nil {
			break
		}
		if !opened && !now.Before(window[0]) && o.Window != nil {
			opened = true
			o.Window(true)
		}
		s := clients[i%o.Senders]
		t := time.Now()
		buf = append(buf[:0], `{"type":"chat","text":"lt:`...)
		buf = strconv.AppendInt(buf, t.UnixNano(), 10)
		buf = append(buf, `"}`...)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.ws.Write(wctx, websocket.MessageText, buf)
		cancel()
		if err == nil && !t.Before(window[0]) {
			sent++
		}
	}
	tick.Stop()
	if opened {
		o.Window(false)
	}
	// Let the last messages arrive (until all have, or Drain passed),
	// then stop the readers.
	due := func() uint64 {
		if r := refused.Load(); sent > r {
			return (sent - r) * uint64(len(clients))
		}
		return 0
	}
	drainEnd := time.Now().Add(o.Drain)
	poll := time.NewTicker(20 * time.Millisecond)
	for time.Now().Before(drainEnd) && ctx.Err() == nil {
		var got uint64
		for _, c := range clients {
			got += c.got.Load()
		}
		if got >= due() {
			break
		}
		<-poll.C
	}
	poll.Stop()
	for _, c := range clients {
		_ = c.ws.CloseNow()
	}
	readers.Wait()

	rep.Window = o.Duration
	rep.Sent, rep.Refused = sent, refused.Load()
	hist := make([]uint64, histBuckets)
	for _, c := range clients {
		for i, n := range c.hist {
			hist[i] += uint64(n)
		}
		rep.Received += c.got.Load()
		rep.Max = max(rep.Max, c.max)
		if c.closed {
			rep.Closed++
		}
	}
	if sent > rep.Refused {
		rep.Expected = (sent - rep.Refused) * uint64(rep.Joined)
	}
	rep.P50 = percentile(hist, rep.Received, 0.50)
	rep.P90 = percentile(hist, rep.Received, 0.90)
	rep.P99 = percentile(hist, rep.Received, 0.99)
	return rep, nil
}

func percentile(hist []uint64, total uint64, p float64) time.Duration {
	if total == 0 {
		return 0
	}
	want := uint64(float64(total)*p + 0.5)
	var n uint64
	for i, c := range hist {
		n += c
		if n >= want {
			return time.Duration(i+1) * histStep
		}
	}
	return time.Duration(len(hist)) * histStep
}

func dialLoad(ctx context.Context, url, token string) (*loadClient, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, url, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	hello, _ := json.Marshal(map[string]any{"type": TypeHello, "v": Version, "token": token})
	if err := ws.Write(dctx, websocket.MessageText, hello); err != nil {
		_ = ws.CloseNow()
		return nil, err
	}
	// The welcome, or the refusal.
	_, b, err := ws.Read(dctx)
	if err != nil {
		_ = ws.CloseNow()
		return nil, err
	}
	if !bytes.HasPrefix(b, []byte(`{"type":"welcome"`)) {
		_ = ws.CloseNow()
		return nil, fmt.Errorf("refused: %.200s", b)
	}
	return &loadClient{ws: ws, hist: make([]uint32, histBuckets)}, nil
}

// read reads frames until the connection closes, timing the stamped
// messages sent inside the window [from, to).
func (c *loadClient) read(from, to *atomic.Int64, refused *atomic.Uint64) {
	buf := make([]byte, 64<<10)
	errPrefix := []byte(`{"type":"error"`)
	for {
		_, r, err := c.ws.Reader(context.Background())
		if err != nil {
			c.closed = websocket.CloseStatus(err) != -1
			return
		}
		n := 0
		for {
			if n == len(buf) {
				buf = slices.Grow(buf, len(buf))[:2*len(buf)]
			}
			m, err := r.Read(buf[n:])
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				c.closed = websocket.CloseStatus(err) != -1
				return
			}
		}
		now := time.Now().UnixNano()
		f, t := from.Load(), to.Load()
		frame := buf[:n]
		for {
			i := bytes.Index(frame, stampPrefix)
			if i < 0 {
				break
			}
			frame = frame[i+len(stampPrefix):]
			j := bytes.IndexByte(frame, '"')
			if j < 0 {
				break
			}
			sent, ok := digits(frame[:j])
			if !ok || sent < f || sent >= t {
				continue
			}
			d := time.Duration(now - sent)
			c.got.Add(1)
			c.max = max(c.max, d)
			c.hist[min(int(d/histStep), histBuckets-1)]++
		}
		if bytes.Contains(buf[:n], errPrefix) {
			refused.Add(uint64(bytes.Count(buf[:n], errPrefix)))
		}
	}
}

// digits parses a decimal number without allocating.
func digits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
