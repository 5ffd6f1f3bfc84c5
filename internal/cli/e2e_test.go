package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveclass/liveclass/client"
	"github.com/liveclass/liveclass/internal/config"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/testpg"
)

// syncBuffer collects a server's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const adminPassword = "admin-password-for-tests"

// testConfig is a server on a random port, its data in dir, its database
// at dbURL (SQLite in dir when empty).
func testConfig(t testing.TB, dir, dbURL string, extra map[string]string) config.Config {
	t.Helper()
	// Free ports for everything, so that tests never clash with each other
	// or with a server running on this machine.
	flags := map[string]string{"listen": "127.0.0.1:0", "data_dir": dir, "log_level": "warn", "shutdown_timeout": "5s",
		"rtc_udp_port": "0", "rtc_tcp_port": "0"}
	if dbURL != "" {
		flags["database_url"] = dbURL
	}
	for k, v := range extra {
		flags[k] = v
	}
	cfg, err := config.Load(config.Sources{Flags: flags, Env: []string{"LIVECLASS_ADMIN_PASSWORD=" + adminPassword}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type running struct {
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
	stop   func() error
}

// start runs the server through run, as `liveclass serve` does, and
// returns once it accepts connections.
func start(t testing.TB, cfg config.Config) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := running{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, hooks{stdout: r.stdout, stderr: r.stderr, listening: func(a net.Addr) { addrc <- a }})
	}()
	select {
	case a := <-addrc:
		r.url = "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v\n%s", err, r.stderr)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("server did not start within 30s:\n%s", r.stderr)
	}
	var once sync.Once
	var stopErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(15 * time.Second):
				stopErr = errors.New("server did not stop within 15s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = r.stop() })
	return r
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode, m
}

func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines before the server, %d after it stopped:\n%s", before, runtime.NumGoroutine(), buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// joinPath is the whole join path through the public client: the admin
// signs in, a mentor is added with the CLI while the server runs, the
// mentor creates a class, a student signs up, enrolls and gets a join
// token that verifies with the key in the data dir.
func joinPath(t *testing.T, dir, dbURL string) {
	ctx := context.Background()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	before := runtime.NumGoroutine()
	cfg := testConfig(t, dir, dbURL, nil)
	srv := start(t, cfg)

	if code, body := getJSON(t, srv.url+"/healthz"); code != 200 || body["status"] != "ok" {
		t.Fatalf("healthz: %d %v", code, body)
	}
	if code, body := getJSON(t, srv.url+"/readyz"); code != 200 || body["status"] != "ok" {
		t.Fatalf("readyz: %d %v", code, body)
	}
	if out := srv.stdout.String(); !strings.Contains(out, "/signin as admin@localhost with the configured admin password") {
		t.Fatalf("start-up message does not say how to sign in:\n%s", out)
	}

	admin := client.New(srv.url)
	s, err := admin.Login(ctx, "admin@localhost", adminPassword)
	if err != nil {
		t.Fatalf("admin sign-in: %v", err)
	}
	if s.User.Role != "ADMIN" {
		t.Fatalf("admin has role %q", s.User.Role)
	}

	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("mentor-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runMain(t, nil, "user", "add", "--data-dir", dir, "--database-url", cfg.DatabaseURL,
		"--email", "mentor@example.org", "--name", "Maya Mentor", "--role", "MENTOR", "--password-file", pwFile)
	if code != 0 {
		t.Fatalf("user add: exit %d\n%s%s", code, out, errOut)
	}

	mentor := client.New(srv.url)
	if _, err := mentor.Login(ctx, "mentor@example.org", "mentor-password"); err != nil {
		t.Fatalf("mentor sign-in: %v", err)
	}
	begin := time.Now().Truncate(time.Minute)
	class, err := mentor.CreateLiveClass(ctx, client.CreateLiveClassInput{
		Title: "Join path", StartTime: begin, EndTime: begin.Add(time.Hour), AWSService: "CHIME",
		RequiresEnrollment: true, AccessLevel: "STUDENT", MaxParticipants: 10,
		Category: "Testing", Level: "BEGINNER", IsFree: true, Tags: []string{"e2e"},
	})
	if err != nil {
		t.Fatalf("create class: %v", err)
	}
	if class.ID == "" || class.Status != "SCHEDULED" || class.Duration != 60 {
		t.Fatalf("created class %+v", class)
	}

	_, err = mentor.CreateLiveClass(ctx, client.CreateLiveClassInput{
		Title: "", StartTime: begin, EndTime: begin.Add(time.Hour), AWSService: "CHIME",
		AccessLevel: "STUDENT", MaxParticipants: 10, Category: "Testing", Level: "BEGINNER", IsFree: true,
	})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != "BAD_USER_INPUT" || ce.Field != "title" {
		t.Fatalf("empty title: %#v, want BAD_USER_INPUT naming title", err)
	}

	student := client.New(srv.url)
	if _, err := student.Signup(ctx, "student@example.org", "student-password", "Sam Student"); err != nil {
		t.Fatalf("sign-up: %v", err)
	}
	page, err := student.ListLiveClasses(ctx, map[string]any{"title": map[string]any{"eq": "Join path"}}, 10, "")
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != class.ID {
		t.Fatalf("listLiveClasses: %+v %v", page, err)
	}
	if _, err := student.GenerateLiveClassToken(ctx, class.ID); client.CodeOf(err) != "FORBIDDEN" {
		t.Fatalf("token before enrolling: %v, want FORBIDDEN", err)
	}
	if _, err := student.Enroll(ctx, class.ID); err != nil {
		t.Fatalf("enroll: %v", err)
	}
	grant, err := student.GenerateLiveClassToken(ctx, class.ID)
	if err != nil {
		t.Fatalf("generateLiveClassToken: %v", err)
	}
	if grant.Role != "ATTENDEE" || grant.AWSService != "CHIME" || !strings.HasPrefix(grant.JoinURL, srv.url) {
		t.Fatalf("grant %+v", grant)
	}
	keyFile, err := os.ReadFile(filepath.Join(dir, config.TokenKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jointoken.NewSigner(deriveKey(strings.TrimSpace(string(keyFile)), "join"))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := signer.Verify(grant.Token, time.Now())
	if err != nil {
		t.Fatalf("the join token does not verify with the data dir's key: %v", err)
	}
	if claims.ClassID != class.ID || claims.Name != "Sam Student" || claims.Role != jointoken.RoleAttendee {
		t.Fatalf("claims %+v", claims)
	}
	if _, err := client.New(srv.url).GenerateLiveClassToken(ctx, class.ID); client.CodeOf(err) != "UNAUTHENTICATED" {
		t.Fatalf("anonymous token: %v, want UNAUTHENTICATED", err)
	}

	// SIGTERM-style shutdown: cancelling the context stops run cleanly
	// and leaves nothing running.
	if err := srv.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := http.Get(srv.url + "/healthz"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	waitGoroutines(t, before)

	// A restart on the same data keeps the accounts and the token key:
	// the admin is not created again and old sessions still work.
	again := start(t, cfg)
	if out := again.stdout.String(); !strings.Contains(out, "liveclass is running at") {
		t.Fatalf("restart should not create an admin:\n%s", out)
	}
	student2 := client.New(again.url, client.WithToken(student.Token()))
	if _, err := student2.GenerateLiveClassToken(ctx, class.ID); err != nil {
		t.Fatalf("session after restart: %v", err)
	}
	key2, _ := os.ReadFile(filepath.Join(dir, config.TokenKeyFile))
	if !bytes.Equal(keyFile, key2) {
		t.Fatal("token key changed across restarts")
	}
}

func TestMain(m *testing.M) { testpg.Main(m) }

func TestJoinPathSQLite(t *testing.T) {
	joinPath(t, t.TempDir(), "")
}

func TestJoinPathPostgres(t *testing.T) {
	joinPath(t, t.TempDir(), testpg.NewDatabase(t))
}

// TestReadinessFollowsTheDatabase stops PostgreSQL under a running server:
// /readyz turns 503 while /healthz stays 200, and the server still shuts
// down cleanly.
func TestReadinessFollowsTheDatabase(t *testing.T) {
	pg := testpg.Start(t)
	// The server's own "postgres" database: a database of NewDatabase would
	// be dropped at cleanup, which fails once the server is stopped.
	srv := start(t, testConfig(t, t.TempDir(), pg.URL(), nil))
	if code, _ := getJSON(t, srv.url+"/readyz"); code != 200 {
		t.Fatalf("readyz with PostgreSQL up: %d", code)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := getJSON(t, srv.url+"/readyz")
		if code == http.StatusServiceUnavailable && body["status"] == "unavailable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d %v with PostgreSQL stopped", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := getJSON(t, srv.url+"/healthz"); code != 200 {
		t.Fatalf("healthz with PostgreSQL down: %d", code)
	}
	if err := srv.stop(); err != nil {
		t.Fatalf("shutdown with PostgreSQL down: %v", err)
	}
}

func TestGeneratedAdminPasswordAndDemo(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, "", map[string]string{"demo": "true"})
	cfg.AdminPassword = ""
	srv := start(t, cfg)
	out := srv.stdout.String()
	i := strings.Index(out, "with password ")
	if i < 0 || !strings.Contains(out, "it is shown only now") {
		t.Fatalf("no generated password in:\n%s", out)
	}
	password := strings.Fields(out[i+len("with password "):])[0]
	ctx := context.Background()
	if _, err := client.New(srv.url).Login(ctx, "admin@localhost", password); err != nil {
		t.Fatalf("sign-in with the printed password: %v", err)
	}
	if !strings.Contains(out, "Demo data created") {
		t.Fatalf("no demo data:\n%s", out)
	}
	j := strings.Index(out, "have the password ")
	if j < 0 {
		t.Fatalf("no demo password in:\n%s", out)
	}
	demoPassword := strings.Fields(out[j+len("have the password "):])[0]
	student := client.New(srv.url)
	if _, err := student.Login(ctx, demoStudent1, demoPassword); err != nil {
		t.Fatalf("demo student sign-in: %v", err)
	}
	demoFilter := map[string]any{"title": map[string]any{"beginsWith": "[Demo]"}}
	page, err := student.ListLiveClasses(ctx, demoFilter, 50, "")
	if err != nil {
		t.Fatal(err)
	}
	services := map[string]int{}
	paid := 0
	for _, c := range page.Items {
		services[c.AWSService]++
		if !c.IsFree {
			paid++
		}
	}
	if len(page.Items) != 5 || services["CHIME"] == 0 || services["IVS"] == 0 || paid == 0 {
		t.Fatalf("demo classes: %d, services %v, paid %d", len(page.Items), services, paid)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}

	// --demo again: nothing new, and the admin is not created again.
	again := start(t, cfg)
	if out := again.stdout.String(); !strings.Contains(out, "Demo data is in place") || strings.Contains(out, "with password") {
		t.Fatalf("second start:\n%s", out)
	}
	page, err = client.New(again.url).ListLiveClasses(ctx, demoFilter, 50, "")
	if err != nil || len(page.Items) != 5 {
		t.Fatalf("after a second --demo: %d classes, %v", len(page.Items), err)
	}
}

func TestLoadGenerator(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "", map[string]string{"signin_rate_limit": "0"})
	srv := start(t, cfg)
	code, out, errOut := runMain(t, []string{"LIVECLASS_ADMIN_PASSWORD=" + adminPassword},
		"loadtest", "join", "--url", srv.url, "--users", "3", "--concurrency", "2", "--duration", "300ms", "--warmup", "100ms", "--list-every", "3",
		"--server-pid", strconv.Itoa(os.Getpid()))
	if code != 0 {
		t.Fatalf("loadtest join: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"generateLiveClassToken", "listLiveClasses", "tester CPU", "server CPU", "per request", "sign-in"} {
		if !strings.Contains(out, want) {
			t.Fatalf("report lacks %q:\n%s", want, out)
		}
	}
	for line := range strings.Lines(out) {
		if strings.Contains(line, "errors") && !strings.HasSuffix(strings.TrimSpace(line), "errors 0") {
			t.Fatalf("load test had errors:\n%s", out)
		}
	}
	code, out, errOut = runMain(t, nil, "loadtest", "healthz", "--url", srv.url, "--concurrency", "2", "--duration", "200ms", "--warmup", "0s")
	if code != 0 || !strings.Contains(out, "healthz") {
		t.Fatalf("loadtest healthz: exit %d\n%s%s", code, out, errOut)
	}
}

// runMain runs the command line in-process and returns its exit code and output.
func runMain(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), Env{Args: args, Environ: env, Stdout: &stdout, Stderr: &stderr, Version: "v-test"})
	return code, stdout.String(), stderr.String()
}
