package cli

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liveclass/liveclass/internal/audience"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/broadcast"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/config"
	"github.com/liveclass/liveclass/internal/events"
	"github.com/liveclass/liveclass/internal/graph"
	"github.com/liveclass/liveclass/internal/hls"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/server"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/signal"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/engine"
	"github.com/liveclass/liveclass/internal/web"
)

func serveCmd(ctx context.Context, e Env, args []string) error {
	fs := newFlagSet("serve", "", "Run the liveclass server until SIGINT or SIGTERM.\n\n"+
		"Every flag also has an environment variable and a config-file key;\n"+
		"flags win over the environment, which wins over the file.")
	cf := addConfigFlags(fs)
	if err := parse(fs, e, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	cfg, err := cf.load(fs, e)
	if err != nil {
		return err
	}
	return run(ctx, cfg, hooks{stdout: e.Stdout, stderr: e.Stderr})
}

// hooks connect run to the process (or to a test).
type hooks struct {
	stdout, stderr io.Writer
	// listening, when set, is told the bound address once the server
	// accepts connections (tests listen on port 0).
	listening func(addr net.Addr)
}

// deriveKey makes an independent key for one purpose from the configured
// token key, so that a join token's key can never verify a CSRF token and
// the other way round, and one configured secret serves both.
func deriveKey(secret, label string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("liveclass " + label + " v1"))
	return m.Sum(nil)
}

// run builds the server's components in order, serves until ctx ends, and
// shuts down: the one place that knows every component.
func run(ctx context.Context, cfg config.Config, h hooks) (err error) {
	log := newLogger(h.stderr, cfg.LogFormat, cfg.LogLevel)

	if err := cfg.ResolveTokenKey(); err != nil {
		return err
	}

	// Listen before building the rest: a taken port fails at once, and with
	// port 0 the real port is known for the public URL.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	cfg.PublicURL = fixPublicPort(cfg.PublicURL, ln.Addr())

	st, err := engine.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close database: %w", cerr)
		}
	}()

	broker := events.New()
	signer, err := jointoken.NewSigner(deriveKey(cfg.TokenKey, "join"))
	if err != nil {
		return err
	}
	accounts := auth.New(st, auth.Options{
		SignupEnabled: cfg.SignupEnabled,
		Logger:        log.With("component", "auth"),
		Key:           deriveKey(cfg.TokenKey, "csrf"),
		PublicURL:     cfg.PublicURL,
		TrustProxy:    cfg.TrustProxy,
		Limits:        auth.RateLimits{AddressAttempts: addressLimit(cfg.SigninRateLimit), AddressWindow: time.Minute},
		OnUserChange: func(kind string, u store.User) {
			broker.Publish(classes.Event{Kind: classes.EventKind(kind), User: &u})
		},
	})
	rules := classes.New(st, broker, signer, classes.Options{PublicURL: cfg.PublicURL})
	api := graph.NewHandler(graph.Config{
		Classes:       rules,
		Auth:          accounts,
		Broker:        broker,
		Logger:        log.With("component", "graphql"),
		Introspection: cfg.Introspection,
	})

	// The media plane. The room manager is built first: the sfu reports
	// into it, and it steers the sfu once SetMedia connects them. Class
	// changes the room makes (LIVE, ENDED, participant counts) go through
	// the classes service, which publishes them to onUpdateLiveClass;
	// their context outlives ctx, because participants leave, and counts
	// change, while the server shuts down.
	bg := context.WithoutCancel(ctx)
	rooms := room.NewManager(room.Options{
		Store:    st,
		Logger:   log.With("component", "room"),
		EndGrace: cfg.LiveEndGrace,
		OnClassChange: func(id store.ClassID) {
			cctx, cancel := context.WithTimeout(bg, 10*time.Second)
			defer cancel()
			if err := rules.ClassChanged(cctx, id); err != nil {
				log.Warn("publishing a class the room changed", "class", id, "err", err)
			}
		},
	})

	// Broadcast classes. The audience hub (chat, polls, reactions, viewer
	// count, stream state) asks the broadcast service to end a class; the
	// broadcast service tells the hub the stream's state and health. HLS
	// URLs are signed with their own key, so that a leaked playlist URL
	// says nothing of join tokens.
	hlsOn := hlsAvailable(cfg, log)
	hlsSigner := hls.NewSigner(deriveKey(cfg.TokenKey, "hls"))
	var hlsURL func(store.ClassID, time.Time) string
	if hlsOn {
		hlsURL = hlsSigner.URL
	}
	var bcast *broadcast.Service
	hub, err := audience.NewHub(audience.Options{
		Store:     st,
		Tokens:    signer,
		Logger:    log.With("component", "audience"),
		PublicURL: cfg.PublicURL,
		OnEnd:     func(ctx context.Context, class store.ClassID) error { return bcast.End(ctx, class) },
		OnBan:     func(class store.ClassID, user store.UserID) { bcast.DropUser(class, user) },
		OnCount: func(class store.ClassID, n int) {
			cctx, cancel := context.WithTimeout(bg, 10*time.Second)
			defer cancel()
			if err := st.SetCurrentParticipants(cctx, class, n); err != nil {
				log.Warn("recording a broadcast's viewer count", "class", class, "err", err)
				return
			}
			if err := rules.ClassChanged(cctx, class); err != nil {
				log.Warn("publishing a broadcast's viewer count", "class", class, "err", err)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("audience: %w", err)
	}
	defer hub.Close()
	bcast, err = broadcast.New(broadcastOptions(cfg, st, rules, signer, hub, hlsURL, hlsOn, log.With("component", "broadcast")))
	if err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	// Before the hub's Close (deferred above), so that it runs first: the
	// publishers and viewers go, then the audience.
	defer bcast.Close()

	media, err := sfu.New(mediaConfig(cfg, bcast.Events(signal.MediaEvents(rooms, log)), log.With("component", "sfu")))
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	bcast.SetMedia(broadcast.SFU(media))
	// Deferred before the signalling handler's Close, so it runs after it
	// (and after the broadcast's and the audience's, deferred earlier but
	// also called in order below): participants leave (attendance written)
	// while their media still stands, then the sfu releases its ports,
	// then the store closes.
	defer func() {
		if cerr := media.Close(); cerr != nil {
			log.Warn("closing the media server", "err", cerr)
		}
	}()
	rooms.SetMedia(signal.RoomMedia(media))
	rtc, err := signal.New(signal.Config{
		Rooms:     rooms,
		SFU:       media,
		Tokens:    signer,
		Classes:   st,
		Logger:    log.With("component", "signal"),
		PublicURL: cfg.PublicURL,
	})
	if err != nil {
		return fmt.Errorf("signalling: %w", err)
	}
	// After the HTTP server stopped accepting: every socket closes with
	// 1001 and its participant leaves the room now.
	defer rtc.Close()
	// Classes a previous process left LIVE: nobody is in them any more.
	sweepLiveClasses(ctx, st, rooms, rules, time.Now(), cfg.LiveEndGrace, true, log)

	ui, err := web.New(web.Config{
		Classes:        rules,
		Auth:           accounts,
		Logger:         log.With("component", "web"),
		SignupDisabled: !cfg.SignupEnabled,
		HLSURL:         hlsURL,
	})
	if err != nil {
		return fmt.Errorf("web UI: %w", err)
	}
	srv := server.New(server.Options{
		Log:             log,
		DB:              st,
		Auth:            accounts.Handler(),
		GraphQL:         api,
		Web:             ui,
		RTC:             rtc,
		Broadcast:       bcast.Handler(),
		HLS:             hlsHandler(cfg, hlsOn, hlsSigner),
		Audience:        hub,
		Authenticate:    accounts.Middleware,
		ShutdownTimeout: cfg.ShutdownTimeout,
	})

	if err := announceAdmin(ctx, h.stdout, accounts, cfg); err != nil {
		return err
	}
	if cfg.Demo {
		if err := seedDemo(ctx, h.stdout, accounts, rules, st); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
	}

	sweepCtx, stopSweep := context.WithCancel(ctx)
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		sweepSessions(sweepCtx, accounts, log)
	}()
	defer func() { stopSweep(); <-swept }()

	tickCtx, stopTick := context.WithCancel(ctx)
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		tickRooms(tickCtx, st, rooms, rules, cfg.LiveEndGrace, log)
	}()
	defer func() { stopTick(); <-ticked }()

	started := []any{"url", cfg.PublicURL, "listen", ln.Addr().String(), "database", redactURL(cfg.DatabaseURL),
		"rtc_udp", udpPorts(media.UDPAddrs()), "rtc_tcp", portOf(media.TCPAddr()), "turn", turnPort(cfg), "hls", hlsOn}
	if cfg.RTCPublicIP != "" {
		started = append(started, "rtc_public_ip", cfg.RTCPublicIP)
	}
	log.Info("liveclass started", started...)
	if h.listening != nil {
		h.listening(ln.Addr())
	}
	if err := srv.Serve(ctx, ln); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// HTTP no longer accepts; the broadcasts (publishers, viewers, HLS
	// packagers), their audiences (attendance written) and the classrooms
	// close before the media server and the store (deferred above, in that
	// order). Close is idempotent, so the deferred calls that cover early
	// returns are harmless.
	stopTick()
	<-ticked
	bcast.Close()
	hub.Close()
	rtc.Close()
	log.Info("liveclass stopped")
	return nil
}

// fixPublicPort replaces port 0 in a public URL derived from a listen
// address of port 0 with the port the listener got.
func fixPublicPort(publicURL string, addr net.Addr) string {
	u, err := url.Parse(publicURL)
	if err != nil || u.Port() != "0" {
		return publicURL
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return publicURL
	}
	u.Host = net.JoinHostPort(u.Hostname(), fmt.Sprint(tcp.Port))
	return u.String()
}

// redactURL hides a database password from logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// announceAdmin makes sure an admin exists and prints how to sign in.
func announceAdmin(ctx context.Context, out io.Writer, accounts *auth.Service, cfg config.Config) error {
	created, generated, err := accounts.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		return fmt.Errorf("create the first admin: %w", err)
	}
	login := cfg.PublicURL + "/signin"
	switch {
	case created && generated != "":
		fmt.Fprintf(out, "Sign in at %s as %s with password %s — it is shown only now; change it with `liveclass user reset-password --email %s`.\n",
			login, cfg.AdminEmail, generated, cfg.AdminEmail)
	case created:
		fmt.Fprintf(out, "Sign in at %s as %s with the configured admin password.\n", login, cfg.AdminEmail)
	default:
		fmt.Fprintf(out, "liveclass is running at %s (sign in at %s).\n", cfg.PublicURL, login)
	}
	return nil
}

// sweepSessions deletes expired sessions now and then, so that the table
// does not grow without end.
func sweepSessions(ctx context.Context, accounts *auth.Service, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := accounts.DeleteExpiredSessions(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("deleting expired sessions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// addressLimit turns the configured per-minute limit into auth's form,
// where a negative count switches the limit off.
func addressLimit(perMinute int) int {
	if perMinute == 0 {
		return -1
	}
	return perMinute
}

// mediaConfig is the sfu's configuration from liveclass's.
func mediaConfig(cfg config.Config, events sfu.Events, log *slog.Logger) sfu.Config {
	c := sfu.Config{
		UDPPort:         cfg.RTCUDPPort,
		TCPPort:         cfg.RTCTCPPort,
		PublicIP:        cfg.RTCPublicIP,
		IncludeLoopback: cfg.RTCLoopbackCandidates,
		Events:          events,
		Logger:          log,
	}
	if cfg.TURNPort != 0 {
		c.TURN = &sfu.TURNConfig{Port: cfg.TURNPort, Username: cfg.TURNUsername, Password: cfg.TURNPassword}
	}
	return c
}

// tickRooms runs what time decides in the rooms, once a second: breakout
// timers, and ending empty classes EndGrace after their end time. Once a
// minute it also sweeps the live classes that have no room in this
// process (see sweepLiveClasses).
func tickRooms(ctx context.Context, st store.Store, rooms *room.Manager, rules *classes.Service, grace time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			rooms.Tick(now)
			if n%60 == 0 {
				sweepLiveClasses(ctx, st, rooms, rules, now, grace, false, log)
			}
		}
	}
}

// sweepLiveClasses deals with interactive classes left LIVE with no room
// in this process: the process that hosted them stopped without ending
// them (a crash, a kill), and Manager.Tick sees only rooms in memory. Such
// a class is ENDED once its end time plus grace has passed; before that
// it stays LIVE, and the next host who joins resumes it. At start-up
// (atStart) nobody can be in any room yet, so a participant count a
// crashed process left behind is set back to 0. The rooms assume one
// process serves the interactive classes (docs/operations.md).
func sweepLiveClasses(ctx context.Context, st store.Store, rooms *room.Manager, rules *classes.Service, now time.Time, grace time.Duration, atStart bool, log *slog.Logger) {
	filter := &store.Filter{Conds: []store.Cond{
		{Field: "status", Op: store.OpEq, Values: []any{string(store.StatusLive)}},
		{Field: "awsService", Op: store.OpEq, Values: []any{string(store.ServiceChime)}},
	}}
	var live []store.LiveClass
	for after := ""; ; {
		page, err := st.ListClasses(ctx, store.ClassQuery{Filter: filter, Now: now, Page: store.Page{Limit: 100, After: after}})
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("listing live classes", "err", err)
			}
			return
		}
		live = append(live, page.Items...)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	for _, c := range live {
		if _, ok := rooms.Room(c.ID); ok {
			continue
		}
		changed := false
		if atStart && c.CurrentParticipants != 0 {
			if err := st.SetCurrentParticipants(ctx, c.ID, 0); err != nil {
				log.Warn("resetting the participant count of a class left live", "class", c.ID, "err", err)
			} else {
				changed = true
			}
		}
		if !now.Before(c.EndTime.Add(grace)) {
			if err := st.SetClassStatus(ctx, c.ID, store.StatusEnded); err != nil {
				log.Warn("ending a class left live", "class", c.ID, "err", err)
			} else {
				log.Info("ended a class left live with nobody in it", "class", c.ID, "end_time", c.EndTime)
				changed = true
			}
		}
		if changed {
			if err := rules.ClassChanged(ctx, c.ID); err != nil && ctx.Err() == nil {
				log.Warn("publishing a class left live", "class", c.ID, "err", err)
			}
		}
	}
}

// udpPorts lists the ports of the ICE UDP mux's addresses (one port
// normally; one per interface when the configured port is 0).
func udpPorts(addrs []net.Addr) string {
	var ports []string
	for _, a := range addrs {
		if p := portOf(a); p != "" && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return strings.Join(ports, ",")
}

// portOf is the port of a TCP or UDP address, "" for none.
func portOf(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return strconv.Itoa(a.Port)
	case *net.UDPAddr:
		return strconv.Itoa(a.Port)
	}
	return ""
}

// turnPort says where the embedded TURN server listens, for the log.
func turnPort(cfg config.Config) string {
	if cfg.TURNPort == 0 {
		return "off"
	}
	return strconv.Itoa(cfg.TURNPort)
}

// hlsAvailable reports whether broadcasts are packaged as HLS: configured,
// and ffmpeg found. Without ffmpeg the server still runs, with WebRTC
// viewers only, and says so.
func hlsAvailable(cfg config.Config, log *slog.Logger) bool {
	if !cfg.HLSEnabled {
		return false
	}
	if _, err := exec.LookPath(cfg.FFmpeg); err != nil {
		log.Warn("HLS is off: ffmpeg not found; install it (make test does) or set ffmpeg to its path, or hls_enabled: false to silence this",
			"ffmpeg", cfg.FFmpeg, "err", err)
		return false
	}
	if err := os.MkdirAll(cfg.HLSDir, 0o750); err != nil {
		log.Warn("HLS is off: cannot create hls_dir", "hls_dir", cfg.HLSDir, "err", err)
		return false
	}
	return true
}

// hlsHandler serves the packaged HLS files, or nothing when HLS is off.
func hlsHandler(cfg config.Config, on bool, signer *hls.Signer) http.Handler {
	if !on {
		return nil
	}
	return hls.NewHandler(cfg.HLSDir, signer, nil)
}

// broadcastOptions is the broadcast service's configuration: a channel's
// HLS packager writes into its own folder of hls_dir, which the HLS
// handler serves.
func broadcastOptions(cfg config.Config, st store.Store, rules *classes.Service, signer *jointoken.Signer, hub *audience.Hub,
	hlsURL func(store.ClassID, time.Time) string, hlsOn bool, log *slog.Logger) broadcast.Options {
	o := broadcast.Options{
		Store:    st,
		Keys:     rules,
		Tokens:   signer,
		Audience: hub,
		OnClassChange: func(ctx context.Context, id store.ClassID) {
			if err := rules.ClassChanged(ctx, id); err != nil {
				log.Warn("publishing a class the broadcast changed", "class", id, "err", err)
			}
		},
		Logger:           log,
		MaxWebRTCViewers: cfg.BroadcastMaxWebRTCViewers,
		EndGrace:         cfg.LiveEndGrace,
		HLSURL:           hlsURL,
	}
	if hlsOn {
		o.StartHLS = func(class store.ClassID, codec string, keyframe func()) (broadcast.Packager, error) {
			return hls.Start(hls.Options{
				Dir:             filepath.Join(cfg.HLSDir, string(class)),
				FFmpeg:          cfg.FFmpeg,
				VideoCodec:      codec,
				SegmentDuration: cfg.HLSSegmentDuration,
				Logger:          log.With("class", class),
				RequestKeyframe: keyframe,
			})
		}
	}
	return o
}
