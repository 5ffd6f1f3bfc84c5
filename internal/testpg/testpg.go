// Package testpg gives tests a real PostgreSQL server: it runs initdb into
// a temporary directory and starts postgres on a random free port, with
// its Unix socket in that directory, as the unprivileged "postgres" user
// when the tests run as root.
//
// Most tests want a fresh database, not a fresh server (a server costs a
// second or two to start, a database a few milliseconds), so the usual
// use is one server per test binary:
//
//	func TestMain(m *testing.M) { testpg.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		url := testpg.NewDatabase(t) // postgres://… of an empty database
//		…
//	}
//
// When LIVECLASS_TEST_DATABASE_URL is set, NewDatabase creates its
// databases on that server instead of starting one.
package testpg

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points the tests at an existing server.
const EnvURL = "LIVECLASS_TEST_DATABASE_URL"

// startTimeout bounds how long a server may take to accept connections.
const startTimeout = 60 * time.Second

// Server is a PostgreSQL server for tests.
type Server struct {
	url     *url.URL // admin URL (database "postgres"); its path is swapped per database
	dir     string   // temporary directory holding data and socket; "" for an external server
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the server process has exited
	logPath string
}

// Start starts a server of its own for tb and stops it when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("testpg: %v", err)
		}
	})
	return s
}

// URL is the connection URL of the server's "postgres" database.
func (s *Server) URL() string { return s.url.String() }

// NewDatabase creates an empty database on s and returns its URL; the
// database is dropped when tb ends (after tb's later-registered cleanups,
// such as closing a store opened on it).
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.admin(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		tb.Fatalf("testpg: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE closes connections a test left open, so that a leak in one
		// test cannot break the cleanup.
		if err := s.admin(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
			tb.Errorf("testpg: drop database %s: %v", name, err)
		}
	})
	u := *s.url
	u.Path = "/" + name
	return u.String()
}

func (s *Server) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.url.String())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// Stop stops the server and removes its directory. Stopping an external
// server does nothing.
func (s *Server) Stop() error {
	if s.cmd == nil {
		return nil
	}
	// SIGINT is PostgreSQL's fast shutdown: it ends client sessions rather
	// than waiting for them.
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
	return os.RemoveAll(s.dir)
}

// shared is the per-process server of NewDatabase. It is package state,
// which liveclass otherwise avoids, because a test binary has exactly one
// process and the point is that its tests share one server; Main stops it.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
	mu   sync.Mutex
}

// NewDatabase creates an empty database on the test binary's shared
// server (started on first use; or the server of
// LIVECLASS_TEST_DATABASE_URL) and returns its URL. Call Main from the
// package's TestMain so that the server is stopped when the tests end.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	shared.once.Do(func() {
		shared.mu.Lock()
		defer shared.mu.Unlock()
		if env := os.Getenv(EnvURL); env != "" {
			shared.srv, shared.err = external(env)
			return
		}
		shared.srv, shared.err = start()
	})
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.srv.NewDatabase(tb)
}

// Main runs the tests and then stops the shared server, if one was
// started, before exiting with the tests' status. Use it as TestMain.
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "testpg:", err)
		}
	}
	shared.mu.Unlock()
	os.Exit(code)
}

func external(raw string) (*Server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("testpg: %s: %w", EnvURL, err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("testpg: %s must be a postgres:// URL", EnvURL)
	}
	return &Server{url: u}, nil
}

// binDir finds the directory of initdb and postgres: the highest version
// under /usr/lib/postgresql (Debian keeps them off PATH), else PATH.
func binDir() (string, error) { return findBin("/usr/lib/postgresql/*/bin") }

// findBin searches the directories matching pattern, highest version
// first, then PATH.
func findBin(pattern string) (string, error) {
	dirs, _ := filepath.Glob(pattern)
	version := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		switch va, vb := version(a), version(b); {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return 0
	})
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries not found: run `make test`, which installs the postgresql package")
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// runner makes commands run as the unprivileged postgres user when we are
// root (PostgreSQL refuses to run as root), and asks the kernel to stop the
// server if the test process dies without cleaning up.
type runner struct {
	prefix []string
	uid    int
	gid    int
}

func newRunner() (runner, error) {
	if os.Geteuid() != 0 {
		return runner{uid: -1, gid: -1}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return runner{}, fmt.Errorf("testpg: running as root needs a 'postgres' user to run the server: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return runner{}, fmt.Errorf("testpg: running as root needs setpriv (util-linux): %w", err)
	}
	return runner{
		prefix: []string{setpriv, "--reuid=" + u.Uid, "--regid=" + u.Gid, "--init-groups", "--pdeathsig=SIGINT", "--"},
		uid:    uid, gid: gid,
	}, nil
}

func (r runner) command(name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if len(r.prefix) > 0 {
		cmd = exec.Command(r.prefix[0], append(append(r.prefix[1:len(r.prefix):len(r.prefix)], name), args...)...)
	} else {
		cmd = exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	}
	// A clean, C-locale environment: initdb takes its defaults from it.
	cmd.Env = []string{"LANG=C", "LC_ALL=C", "PATH=/usr/bin:/bin", "HOME=/tmp"}
	return cmd
}

// start runs initdb and postgres in a new temporary directory.
func start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	run, err := newRunner()
	if err != nil {
		return nil, err
	}
	dir, err := tempDir()
	if err != nil {
		return nil, fmt.Errorf("testpg: %w", err)
	}
	fail := func(err error) (*Server, error) {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("testpg: %w", err)
	}
	if run.uid >= 0 {
		if err := os.Chown(dir, run.uid, run.gid); err != nil {
			return fail(err)
		}
	}
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	if err := os.Mkdir(sock, 0o700); err != nil {
		return fail(err)
	}
	if run.uid >= 0 {
		if err := os.Chown(sock, run.uid, run.gid); err != nil {
			return fail(err)
		}
	}
	initdb := run.command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	// A taken port fails the start; another free port usually works.
	var lastErr error
	for range 3 {
		s, err := launch(run, bin, dir, data, sock)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return fail(lastErr)
}

func launch(run runner, bin, dir, data, sock string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	// Durability settings are off: a test database that dies with the
	// machine loses nothing anyone needs, and fsync costs seconds.
	cmd := run.command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", sock,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB",
		"-c", "log_min_messages=warning")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &Server{
		url:     &url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/postgres", RawQuery: "sslmode=disable"},
		dir:     dir,
		cmd:     cmd,
		exited:  make(chan struct{}),
		logPath: logPath,
	}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		_ = cmd.Process.Kill()
		<-s.exited
		return nil, err
	}
	return s, nil
}

// waitReady polls until the server accepts a connection, it exits, or the
// deadline passes.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited during start:\n%s", s.logTail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.url.String())
		if err == nil {
			err = conn.Ping(ctx)
			_ = conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-s.exited:
		case <-time.After(25 * time.Millisecond): // poll interval, not a wait for a guess
		}
	}
	return fmt.Errorf("postgres not ready after %v: %v\n%s", startTimeout, lastErr, s.logTail())
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// tempDir makes the server's directory in memory (/dev/shm) when the
// machine has one: CREATE DATABASE copies a template on disk, which costs
// about 0.3 s on a plain disk and 0.05 s in memory, and the tests create
// a database each.
func tempDir() (string, error) {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "liveclass-testpg-"); err == nil {
			return dir, nil
		}
	}
	return os.MkdirTemp("", "liveclass-testpg-")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
