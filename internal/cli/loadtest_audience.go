package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/liveclass/liveclass/internal/audience"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
)

const loadAudienceUsage = `Usage: liveclass loadtest audience [flags]

Chat fan-out of a broadcast class's audience: --viewers WebSocket clients
join GET /audience; --senders of them chat, --rate messages a second in
all; every client times the arrival of every message (send → receipt).

Without --url, the test serves its own audience hub over a SQLite file in
a temporary folder, on a loopback port, in this process (the CPU figure is
then the server's and the clients' together); --baseline makes that hub
encode each message once per viewer instead of once for all. With --url,
it joins a running server's class: --token-key, --class and --users say
whom to join as.

To measure the server and the clients apart, run the hub alone in one
process and the clients in another:

  liveclass loadtest audience --serve-only /tmp/aud.tokens &
  liveclass loadtest audience --tokens /tmp/aud.tokens --server-pid $!

--serve-only writes the hub's URL and a token per viewer to the file (once
it is ready) and serves until interrupted; --tokens reads them.`

type audienceLoadOptions struct {
	url, tokenKey, class, usersFile string
	viewers, senders                int
	rate, joinRate                  float64
	warmup, duration                time.Duration
	baseline                        bool
	coalesce                        time.Duration
	cpuProfile                      string
	serveOnly, tokensFile           string
	serverPIDs                      []int
}

func loadAudienceCmd(ctx context.Context, e Env, args []string) error {
	fs := newFlagSet("loadtest audience", "", loadAudienceUsage)
	var o audienceLoadOptions
	var serverPIDs string
	fs.StringVar(&o.url, "url", "", "the audience WebSocket of a running server (ws://host:port/audience); empty: serve one here")
	fs.StringVar(&o.tokenKey, "token-key", "", "with --url: the server's token key, to mint join tokens (or $LIVECLASS_TOKEN_KEY)")
	fs.StringVar(&o.class, "class", "", "with --url: the IVS class to join")
	fs.StringVar(&o.usersFile, "users", "", "with --url: file of user IDs, one a line, one per viewer")
	fs.IntVar(&o.viewers, "viewers", 1000, "WebSocket clients")
	fs.IntVar(&o.senders, "senders", 100, "of the viewers, how many chat (taking turns)")
	fs.Float64Var(&o.rate, "rate", 100, "chat messages per second, over all senders")
	fs.Float64Var(&o.joinRate, "join-rate", 500, "joins per second")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "how long to run before measuring")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long to measure")
	fs.BoolVar(&o.baseline, "baseline", false, "without --url: encode each message once per viewer (the baseline)")
	fs.DurationVar(&o.coalesce, "coalesce", 20*time.Millisecond, "without --url: the hub's least time between two frames to a viewer (negative: off)")
	fs.StringVar(&o.serveOnly, "serve-only", "", "serve the hub only, writing its URL and the viewers' tokens to this file, until interrupted")
	fs.StringVar(&o.tokensFile, "tokens", "", "join with the URL and tokens a --serve-only process wrote to this file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write this process's CPU profile over the measured window (with --serve-only: while serving) to this file")
	fs.StringVar(&serverPIDs, "server-pid", "", "comma-separated process IDs of the server on this machine, to report its CPU")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	for _, f := range splitList(serverPIDs) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return usagef("loadtest audience: --server-pid: %q is not a process ID", f)
		}
		o.serverPIDs = append(o.serverPIDs, pid)
	}
	switch {
	case o.viewers < 1 || o.senders < 1 || o.senders > o.viewers && o.serveOnly == "":
		return usagef("loadtest audience: --viewers ≥ 1 and 1 ≤ --senders ≤ --viewers")
	case o.rate <= 0 || o.joinRate <= 0 || o.duration <= 0 || o.warmup < 0:
		return usagef("loadtest audience: --rate, --join-rate and --duration must be > 0, --warmup ≥ 0")
	case o.url != "" && o.baseline:
		return usagef("loadtest audience: --baseline sets up the hub this test serves; it cannot change a running server")
	}
	if o.tokenKey == "" {
		o.tokenKey = lookupEnv(e.Environ, "LIVECLASS_TOKEN_KEY")
	}
	var tokens []string
	var err error
	switch {
	case o.serveOnly != "":
		return serveAudienceOnly(ctx, e, o)
	case o.tokensFile != "":
		lines, err := readLines(o.tokensFile)
		if err != nil || len(lines) < 2 || !strings.HasPrefix(lines[0], "ws") {
			return usagef("loadtest audience: --tokens: want a URL line and token lines, as --serve-only writes (%v)", err)
		}
		o.url, tokens = lines[0], lines[1:]
		if len(tokens) < o.viewers {
			return usagef("loadtest audience: --tokens holds %d tokens, fewer than --viewers %d", len(tokens), o.viewers)
		}
		tokens = tokens[:o.viewers]
	case o.url == "":
		var stop func()
		var hub *audience.Hub
		o.url, tokens, hub, stop, err = serveAudienceForLoad(ctx, o)
		if err != nil {
			return err
		}
		defer stop()
		defer func() { printHubStats(e.Stdout, hub.Stats()) }()
	default:
		if o.tokenKey == "" || o.class == "" || o.usersFile == "" {
			return usagef("loadtest audience: --url needs --token-key (or $LIVECLASS_TOKEN_KEY), --class and --users")
		}
		if tokens, err = audienceTokens(o); err != nil {
			return err
		}
	}
	var prof *os.File
	if o.cpuProfile != "" {
		if prof, err = os.Create(o.cpuProfile); err != nil {
			return err
		}
		defer prof.Close()
	}
	var cpu0, cpu1 time.Duration
	var srv0, srv1 []time.Duration
	rep, err := audience.Load(ctx, audience.LoadOptions{
		URL: o.url, Tokens: tokens, Senders: o.senders, Rate: o.rate, JoinRate: o.joinRate,
		Warmup: o.warmup, Duration: o.duration,
		Window: func(open bool) {
			if open {
				cpu0, srv0 = cpuTime(), processTreeCPU(o.serverPIDs)
				if prof != nil {
					_ = pprof.StartCPUProfile(prof)
				}
			} else {
				cpu1, srv1 = cpuTime(), processTreeCPU(o.serverPIDs)
				if prof != nil {
					pprof.StopCPUProfile()
				}
			}
		},
	})
	if err != nil {
		return err
	}
	printAudienceReport(e.Stdout, o, rep, cpu1-cpu0, srv0, srv1)
	if rep.Received == 0 {
		return errors.New("loadtest audience: no message was delivered")
	}
	return nil
}

func printAudienceReport(w io.Writer, o audienceLoadOptions, r audience.LoadReport, cpu time.Duration, srv0, srv1 []time.Duration) {
	mode := fmt.Sprintf("shared encode, coalesce %s", o.coalesce)
	if o.baseline {
		mode = fmt.Sprintf("baseline: one encode per viewer, coalesce %s", o.coalesce)
	}
	if o.tokensFile != "" || o.tokenKey != "" && o.class != "" {
		mode = "server in another process"
	}
	fmt.Fprintf(w, "audience fan-out (%s): %d viewers joined of %d, %d senders, %.0f messages/s, %s measured\n",
		mode, r.Joined, r.Clients, o.senders, o.rate, r.Window)
	fmt.Fprintf(w, "  messages sent %d, refused %d; deliveries %d of %d expected (%.2f%% lost), %.0f/s\n",
		r.Sent, r.Refused, r.Received, r.Expected, lossPct(r.Received, r.Expected), r.DeliveriesPerSecond())
	fmt.Fprintf(w, "  latency send → receipt: p50 %s  p90 %s  p99 %s  max %s\n",
		fmtDur(r.P50), fmtDur(r.P90), fmtDur(r.P99), fmtDur(r.Max))
	fmt.Fprintf(w, "  connections closed by the server: %d\n", r.Closed)
	secs := r.Window.Seconds()
	fmt.Fprintf(w, "  this process's CPU: %.2f cores (%.2f µs per delivery)\n",
		cpu.Seconds()/secs, float64(cpu.Microseconds())/max(float64(r.Received), 1))
	for i := range srv1 {
		d := srv1[i] - srv0[i]
		fmt.Fprintf(w, "  server pid %d CPU: %.2f cores (%.2f µs per delivery)\n",
			o.serverPIDs[i], d.Seconds()/secs, float64(d.Microseconds())/max(float64(r.Received), 1))
	}
}

// printHubStats reports the served hub's counters over the whole run
// (joins and warm-up included).
func printHubStats(w io.Writer, s audience.Stats) {
	per := 0.0
	if s.Frames > 0 {
		per = float64(s.Queued) / float64(s.Frames)
	}
	fmt.Fprintf(w, "  hub: %d messages queued in %d frames (%.1f a frame), %d dropped, %d viewers too slow\n",
		s.Queued, s.Frames, per, s.Dropped, s.TooSlow)
}

func lossPct(got, want uint64) float64 {
	if want == 0 || got >= want {
		return 0
	}
	return 100 * float64(want-got) / float64(want)
}

// audienceTokens mints a viewer token per user of the file for the class.
func audienceTokens(o audienceLoadOptions) ([]string, error) {
	signer, err := jointoken.NewSigner([]byte(o.tokenKey))
	if err != nil {
		return nil, usagef("loadtest audience: --token-key: %v", err)
	}
	users, err := readLines(o.usersFile)
	if err != nil {
		return nil, usagef("loadtest audience: --users: %v", err)
	}
	if len(users) < o.viewers {
		return nil, usagef("loadtest audience: --users holds %d users, fewer than --viewers %d", len(users), o.viewers)
	}
	now := time.Now()
	toks := make([]string, o.viewers)
	for i := range toks {
		toks[i], _ = signer.Sign(jointoken.Claims{
			ClassID: o.class, UserID: users[i], Name: fmt.Sprintf("viewer %d", i), Role: jointoken.RoleAttendee,
			Service: string(store.ServiceIVS), ID: fmt.Sprintf("load-%d", i), IssuedAt: now, ExpiresAt: now.Add(2 * time.Hour),
		})
	}
	return toks, nil
}

// serveAudienceForLoad serves an audience hub over a fresh SQLite file on
// a loopback port, with an IVS class and a user per viewer, and returns
// its URL and the viewers' tokens.
func serveAudienceForLoad(ctx context.Context, o audienceLoadOptions) (string, []string, *audience.Hub, func(), error) {
	dir, err := os.MkdirTemp("", "liveclass-audience-load-")
	if err != nil {
		return "", nil, nil, nil, err
	}
	var cleanup []func()
	stop := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	cleanup = append(cleanup, func() { _ = os.RemoveAll(dir) })
	fail := func(err error) (string, []string, *audience.Hub, func(), error) {
		stop()
		return "", nil, nil, nil, fmt.Errorf("loadtest audience: set-up: %w", err)
	}
	log := slog.New(slog.DiscardHandler)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "load.db"), log)
	if err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, func() { _ = db.Close() })
	host := store.User{Name: "Load host", Email: "host@load.invalid", Role: store.RoleMentor}
	if err := db.CreateUser(ctx, &host); err != nil {
		return fail(err)
	}
	now := time.Now()
	class := store.LiveClass{
		Title: "Audience load", InstructorID: host.ID, StartTime: now, EndTime: now.Add(2 * time.Hour), Duration: 120,
		Service: store.ServiceIVS, AccessLevel: store.RoleStudent, MaxParticipants: o.viewers + 1,
		Category: "load", Level: store.LevelBeginner, IsFree: true, Status: store.StatusLive,
	}
	if err := db.CreateClass(ctx, &class); err != nil {
		return fail(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	signer, err := jointoken.NewSigner(key)
	if err != nil {
		return fail(err)
	}
	toks := make([]string, o.viewers)
	for i := range toks {
		u := store.User{Name: fmt.Sprintf("viewer %d", i), Email: fmt.Sprintf("viewer%d@load.invalid", i), Role: store.RoleStudent}
		if err := db.CreateUser(ctx, &u); err != nil {
			return fail(err)
		}
		toks[i], _ = signer.Sign(jointoken.Claims{
			ClassID: string(class.ID), UserID: string(u.ID), Name: u.Name, Role: jointoken.RoleAttendee,
			Service: string(store.ServiceIVS), ID: fmt.Sprintf("load-%d", i), IssuedAt: now, ExpiresAt: now.Add(2 * time.Hour),
		})
	}
	hub, err := audience.NewHub(audience.Options{Store: db, Tokens: signer, Logger: log, EncodePerViewer: o.baseline, Coalesce: o.coalesce})
	if err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, hub.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /audience", hub)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	// The server stops first: the hub then closes the connections left.
	cleanup = append(cleanup, func() { _ = srv.Close() })
	return "ws://" + ln.Addr().String() + "/audience", toks, hub, stop, nil
}

// serveAudienceOnly serves the load's hub until ctx ends, after writing
// its URL and the viewers' tokens to o.serveOnly (atomically, so that a
// script may wait for the file).
func serveAudienceOnly(ctx context.Context, e Env, o audienceLoadOptions) error {
	url, tokens, hub, stop, err := serveAudienceForLoad(ctx, o)
	if err != nil {
		return err
	}
	defer stop()
	defer func() { printHubStats(e.Stdout, hub.Stats()) }()
	body := url + "\n" + strings.Join(tokens, "\n") + "\n"
	tmp := o.serveOnly + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, o.serveOnly); err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(e.Stdout, "serving %s for %d viewers (pid %d); tokens in %s\n", url, len(tokens), os.Getpid(), o.serveOnly)
	<-ctx.Done()
	return nil
}
