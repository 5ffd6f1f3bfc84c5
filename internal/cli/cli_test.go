package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liveclass/liveclass/internal/config"
)

func TestConfigErrorsExit2NamingTheKey(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: \":0\"\nsignup_enabld: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"bad listen flag", nil, []string{"serve", "--listen", "nonsense"}, "listen"},
		{"unknown env", []string{"LIVECLASS_LISTN=:1"}, []string{"serve"}, "LIVECLASS_LISTN"},
		{"unknown file key", nil, []string{"serve", "--config", bad}, "signup_enabld"},
		{"bad public url", nil, []string{"serve", "--public-url", "example.org"}, "public_url"},
		{"bad bool", []string{"LIVECLASS_DEMO=perhaps"}, []string{"serve"}, "demo"},
		{"migrate bad database url", nil, []string{"migrate", "--database-url", "mysql://x"}, "database_url"},
		{"user with bad log level", nil, []string{"user", "list", "--log-level", "loud"}, "log_level"},
		{"unknown flag", nil, []string{"serve", "--frobnicate"}, "frobnicate"},
		{"flag of another command", nil, []string{"migrate", "--demo"}, "demo"},
		{"unknown command", nil, []string{"serv"}, "serv"},
		{"user without subcommand", nil, []string{"user"}, "subcommand"},
		{"user add without email", nil, []string{"user", "add", "--data-dir", dir}, "--email"},
		{"user add bad role", nil, []string{"user", "add", "--email", "a@b.c", "--role", "KING", "--data-dir", dir}, "--role"},
		{"stray argument", nil, []string{"migrate", "extra"}, "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runMain(t, tt.env, tt.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Fatalf("stderr does not name %q:\n%s", tt.want, errOut)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"migrate", "-h"}, {"user", "--help"}, {"user", "add", "--help"},
		{"loadtest", "--help"}, {"loadtest", "join", "--help"}, {"version", "--help"},
	} {
		code, out, errOut := runMain(t, nil, args...)
		if code != 0 || !strings.Contains(out, "Usage") {
			t.Errorf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
	}
	code, out, _ := runMain(t, nil, "serve", "--help")
	for _, flag := range []string{"-listen", "-data-dir", "-database-url", "-public-url", "-demo", "-config", "LIVECLASS_LISTEN"} {
		if code != 0 || !strings.Contains(out, flag) {
			t.Errorf("serve --help lacks %s:\n%s", flag, out)
		}
	}
	if code, out, _ := runMain(t, nil, "version"); code != 0 || out != "liveclass v-test\n" {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errOut := runMain(t, nil); code != exitUsage || !strings.Contains(errOut, "Usage") {
		t.Errorf("no command: %d %q", code, errOut)
	}
}

func TestUserAndMigrateCommands(t *testing.T) {
	dir := t.TempDir()
	db := []string{"--data-dir", dir}

	code, out, errOut := runMain(t, nil, append([]string{"migrate"}, db...)...)
	if code != 0 || !strings.Contains(out, "applied") {
		t.Fatalf("first migrate: %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = runMain(t, nil, append([]string{"migrate"}, db...)...); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "liveclass.db")); err != nil {
		t.Fatalf("migrate did not create the database in the data dir: %v", err)
	}

	code, out, errOut = runMain(t, nil, append([]string{"user", "add", "--email", "Mentor@Example.org", "--name", "Maya", "--role", "MENTOR"}, db...)...)
	if code != 0 || !strings.Contains(out, "Created MENTOR mentor@example.org") || !strings.Contains(out, "Password: ") {
		t.Fatalf("user add: %d\n%s%s", code, out, errOut)
	}
	// The same email again is a conflict, not a second account.
	if code, _, errOut = runMain(t, nil, append([]string{"user", "add", "--email", "mentor@example.org", "--name", "Again"}, db...)...); code != exitError || errOut == "" {
		t.Fatalf("duplicate user add: %d %q", code, errOut)
	}
	if code, out, errOut = runMain(t, nil, append([]string{"user", "set-role", "--email", "mentor@example.org", "--role", "ADMIN"}, db...)...); code != 0 {
		t.Fatalf("set-role: %d\n%s%s", code, out, errOut)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("a-new-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut = runMain(t, nil, append([]string{"user", "reset-password", "--email", "mentor@example.org", "--password-file", pw}, db...)...); code != 0 || strings.Contains(out, "Password:") {
		t.Fatalf("reset-password: %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut = runMain(t, nil, append([]string{"user", "reset-password", "--email", "nobody@example.org"}, db...)...); code != exitError || errOut == "" {
		t.Fatalf("reset-password of an unknown user: %d %q", code, errOut)
	}
	code, out, errOut = runMain(t, nil, append([]string{"user", "list"}, db...)...)
	if code != 0 {
		t.Fatalf("user list: %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "mentor@example.org") || !strings.Contains(lines[1], "ADMIN") || !strings.Contains(lines[1], "Maya") {
		t.Fatalf("user list:\n%s", out)
	}
	// The environment selects the database as well as the flags do.
	code, out, _ = runMain(t, []string{"LIVECLASS_DATA_DIR=" + dir}, "user", "list")
	if code != 0 || !strings.Contains(out, "mentor@example.org") {
		t.Fatalf("user list via LIVECLASS_DATA_DIR: %d\n%s", code, out)
	}
}

// TestReadmeListsEveryKey keeps the README's configuration table in step
// with the keys the program accepts.
func TestReadmeListsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, k := range config.Keys() {
		row := ""
		for line := range strings.Lines(readme) {
			if strings.HasPrefix(line, "| `"+k.Name+"` |") {
				row = line
			}
		}
		if row == "" {
			t.Errorf("README has no row for %s", k.Name)
			continue
		}
		if !strings.Contains(row, k.Env()) {
			t.Errorf("README row of %s lacks %s", k.Name, k.Env())
		}
		if k.Flag != "" && !strings.Contains(row, "--"+k.Flag) {
			t.Errorf("README row of %s lacks --%s", k.Name, k.Flag)
		}
	}
}
