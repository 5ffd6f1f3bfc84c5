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
	"net/url"
	"time"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/config"
	"github.com/liveclass/liveclass/internal/events"
	"github.com/liveclass/liveclass/internal/graph"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/server"
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
	ui, err := web.New(web.Config{
		Classes:        rules,
		Auth:           accounts,
		Logger:         log.With("component", "web"),
		SignupDisabled: !cfg.SignupEnabled,
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

	log.Info("liveclass started", "url", cfg.PublicURL, "listen", ln.Addr().String(), "database", redactURL(cfg.DatabaseURL))
	if h.listening != nil {
		h.listening(ln.Addr())
	}
	if err := srv.Serve(ctx, ln); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
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
