package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadAudience runs the audience load small, with the hub served by
// the command: every message reaches every viewer.
func TestLoadAudience(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), Env{Args: []string{"loadtest", "audience",
		"--viewers", "30", "--senders", "5", "--rate", "10", "--warmup", "200ms", "--duration", "1s"},
		Stdout: &stdout, Stderr: &stderr})
	out := stdout.String()
	if code != exitOK || !strings.Contains(out, "30 viewers joined of 30") || !strings.Contains(out, "(0.00% lost)") ||
		!strings.Contains(out, "0 dropped, 0 viewers too slow") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr.String())
	}
}

// TestLoadAudienceSplit runs the hub with --serve-only in one goroutine
// and the clients with --tokens, as two processes would.
func TestLoadAudienceSplit(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "aud.tokens")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan int, 1)
	var serveOut bytes.Buffer
	go func() {
		served <- Main(ctx, Env{Args: []string{"loadtest", "audience", "--serve-only", tokens, "--viewers", "20"},
			Stdout: &serveOut, Stderr: &serveOut})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(tokens); err == nil {
			break
		}
		select {
		case code := <-served:
			t.Fatalf("--serve-only ended early, exit %d: %s", code, serveOut.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			code := <-served
			t.Fatalf("no tokens file; --serve-only exit %d: %s", code, serveOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), Env{Args: []string{"loadtest", "audience", "--tokens", tokens,
		"--viewers", "20", "--senders", "4", "--rate", "8", "--warmup", "200ms", "--duration", "1s"},
		Stdout: &stdout, Stderr: &stderr})
	if code != exitOK || !strings.Contains(stdout.String(), "server in another process") || !strings.Contains(stdout.String(), "(0.00% lost)") {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	cancel()
	if code := <-served; code != exitOK {
		t.Fatalf("--serve-only exit %d: %s", code, serveOut.String())
	}
}

// TestLoadAudienceFlags checks the command's registration and refusals.
func TestLoadAudienceFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"loadtest", "audience", "--help"}, exitOK, "--serve-only"},
		{[]string{"loadtest", "--help"}, exitOK, "audience"},
		{[]string{"loadtest", "audience", "--senders", "5", "--viewers", "2"}, exitUsage, "--senders"},
		{[]string{"loadtest", "audience", "--rate", "0"}, exitUsage, "--rate"},
		{[]string{"loadtest", "audience", "--url", "ws://127.0.0.1:1/audience"}, exitUsage, "--token-key"},
		{[]string{"loadtest", "audience", "--url", "ws://127.0.0.1:1/audience", "--baseline"}, exitUsage, "--baseline"},
		{[]string{"loadtest", "audience", "--tokens", "/nonexistent/file"}, exitUsage, "--tokens"},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), Env{Args: tc.args, Stdout: &stdout, Stderr: &stderr})
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d and %q", tc.args, code, stdout.String()+stderr.String(), tc.code, tc.want)
		}
	}
}
