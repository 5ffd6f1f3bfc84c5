package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	cfg, err := Load(Sources{})
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.DatabaseURL = "sqlite:data/liveclass.db"
	want.PublicURL = "http://localhost:8080"
	want.HLSDir = filepath.Join("data", "hls")
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "c.yaml", "listen: \":1000\"\nlog_level: debug\nsignup_enabled: false\ndata_dir: /from/file\n")
	tests := []struct {
		name  string
		src   Sources
		check func(Config) bool
	}{
		{"file over default", Sources{File: file},
			func(c Config) bool { return c.Listen == ":1000" && c.LogLevel == "debug" && !c.SignupEnabled }},
		{"env over file", Sources{File: file, Env: []string{"LIVECLASS_LISTEN=:2000", "PATH=/bin"}},
			func(c Config) bool { return c.Listen == ":2000" && c.LogLevel == "debug" }},
		{"flag over env", Sources{File: file, Env: []string{"LIVECLASS_LISTEN=:2000"}, Flags: map[string]string{"listen": ":3000"}},
			func(c Config) bool { return c.Listen == ":3000" }},
		{"config file from env", Sources{Env: []string{"LIVECLASS_CONFIG=" + file}},
			func(c Config) bool { return c.Listen == ":1000" }},
		{"derived database url follows data dir", Sources{File: file},
			func(c Config) bool { return c.DatabaseURL == "sqlite:/from/file/liveclass.db" }},
		{"derived public url follows listen", Sources{Flags: map[string]string{"listen": "127.0.0.1:9999"}},
			func(c Config) bool { return c.PublicURL == "http://127.0.0.1:9999" }},
		{"explicit public url kept, slash trimmed", Sources{Flags: map[string]string{"public_url": "https://class.example.org/"}},
			func(c Config) bool { return c.PublicURL == "https://class.example.org" }},
		{"bool flag", Sources{Env: []string{"LIVECLASS_DEMO=false"}, Flags: map[string]string{"demo": "true"}},
			func(c Config) bool { return c.Demo }},
		{"duration", Sources{Env: []string{"LIVECLASS_SHUTDOWN_TIMEOUT=3s"}},
			func(c Config) bool { return c.ShutdownTimeout == 3*time.Second }},
		{"rate limit off", Sources{Env: []string{"LIVECLASS_SIGNIN_RATE_LIMIT=0", "LIVECLASS_TRUST_PROXY=true"}},
			func(c Config) bool { return c.SigninRateLimit == 0 && c.TrustProxy }},
		{"test variables are not config", Sources{Env: []string{"LIVECLASS_TEST_DATABASE_URL=postgres://x"}},
			func(c Config) bool { return c.Listen == ":8080" }},
		{"empty file", Sources{File: writeFile(t, "e.yaml", "# nothing\n")},
			func(c Config) bool { return c.Listen == ":8080" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Fatalf("unexpected config %+v", cfg)
			}
		})
	}
}

// TestMediaKeys checks the media plane's keys from each source and their
// defaults.
func TestMediaKeys(t *testing.T) {
	cfg, err := Load(Sources{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RTCUDPPort != 7882 || cfg.RTCTCPPort != 7881 || cfg.RTCPublicIP != "" || !cfg.RTCLoopbackCandidates ||
		cfg.TURNPort != 0 || cfg.LiveEndGrace != 10*time.Minute {
		t.Fatalf("media defaults: %+v", cfg)
	}
	file := writeFile(t, "m.yaml", "rtc_udp_port: 40000\nrtc_public_ip: 203.0.113.7\nrtc_loopback_candidates: false\nturn_port: 3478\nturn_username: class\n")
	cfg, err = Load(Sources{
		File:  file,
		Env:   []string{"LIVECLASS_TURN_PASSWORD_FILE=" + writeFile(t, "turn", "turn-secret\n"), "LIVECLASS_LIVE_END_GRACE=90s"},
		Flags: map[string]string{"rtc_tcp_port": "0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RTCUDPPort != 40000 || cfg.RTCTCPPort != 0 || cfg.RTCPublicIP != "203.0.113.7" || cfg.RTCLoopbackCandidates ||
		cfg.TURNPort != 3478 || cfg.TURNUsername != "class" || cfg.TURNPassword != "turn-secret" || cfg.LiveEndGrace != 90*time.Second {
		t.Fatalf("media keys not applied: %+v", cfg)
	}
	if _, err := Load(Sources{Flags: map[string]string{"rtc_public_ip": "2001:db8::1"}}); err != nil {
		t.Fatalf("IPv6 public IP refused: %v", err)
	}
}

// TestBroadcastKeys checks the broadcast keys' defaults and sources.
func TestBroadcastKeys(t *testing.T) {
	cfg, err := Load(Sources{Flags: map[string]string{"data_dir": "/srv/lc"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BroadcastMaxWebRTCViewers != 500 || !cfg.HLSEnabled || cfg.HLSDir != "/srv/lc/hls" ||
		cfg.HLSSegmentDuration != time.Second || cfg.FFmpeg != "ffmpeg" {
		t.Fatalf("broadcast defaults: %+v", cfg)
	}
	cfg, err = Load(Sources{
		File:  writeFile(t, "b.yaml", "broadcast_max_webrtc_viewers: 0\nhls_dir: /dev/shm/hls\n"),
		Env:   []string{"LIVECLASS_HLS_SEGMENT_DURATION=2s"},
		Flags: map[string]string{"ffmpeg": "/opt/ffmpeg/bin/ffmpeg"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BroadcastMaxWebRTCViewers != 0 || cfg.HLSDir != "/dev/shm/hls" || cfg.HLSSegmentDuration != 2*time.Second || cfg.FFmpeg != "/opt/ffmpeg/bin/ffmpeg" {
		t.Fatalf("broadcast keys not applied: %+v", cfg)
	}
	// With HLS off, its keys are not checked.
	if _, err := Load(Sources{Flags: map[string]string{"hls_enabled": "false", "hls_segment_duration": "10s"}}); err != nil {
		t.Fatalf("HLS off: %v", err)
	}
}

func TestSecretFiles(t *testing.T) {
	key := strings.Repeat("k", 40)
	keyFile := writeFile(t, "key", key+"\n")
	pwFile := writeFile(t, "pw", "correct horse\r\n")
	cfg, err := Load(Sources{Env: []string{
		"LIVECLASS_TOKEN_KEY_FILE=" + keyFile,
		"LIVECLASS_ADMIN_PASSWORD_FILE=" + pwFile,
		"LIVECLASS_DATABASE_URL_FILE=" + writeFile(t, "db", "postgres://u:p@h:5432/d\n"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TokenKey != key || cfg.AdminPassword != "correct horse" || cfg.DatabaseURL != "postgres://u:p@h:5432/d" {
		t.Fatalf("secrets not read from files: %+v", cfg)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		src  Sources
		key  string
	}{
		{"unknown file key", Sources{File: writeFile(t, "u.yaml", "listen: \":1\"\nlistne: x\n")}, "listne"},
		{"file bad bool", Sources{File: writeFile(t, "b.yaml", "signup_enabled: maybe\n")}, "signup_enabled"},
		{"file list value", Sources{File: writeFile(t, "l.yaml", "listen: [1, 2]\n")}, "listen"},
		{"file duplicate key", Sources{File: writeFile(t, "d.yaml", "listen: a\nlisten: b\n")}, "config"},
		{"missing file", Sources{File: filepath.Join(t.TempDir(), "nope.yaml")}, "config"},
		{"unknown env", Sources{Env: []string{"LIVECLASS_LISTN=:1"}}, "LIVECLASS_LISTN"},
		{"_FILE on a non-secret", Sources{Env: []string{"LIVECLASS_LISTEN_FILE=/x"}}, "LIVECLASS_LISTEN_FILE"},
		{"env and _FILE both", Sources{Env: []string{"LIVECLASS_TOKEN_KEY=" + strings.Repeat("a", 32), "LIVECLASS_TOKEN_KEY_FILE=/x"}}, "token_key"},
		{"unreadable _FILE", Sources{Env: []string{"LIVECLASS_TOKEN_KEY_FILE=/does/not/exist"}}, "token_key"},
		{"bad listen", Sources{Flags: map[string]string{"listen": "8080"}}, "listen"},
		{"bad port", Sources{Flags: map[string]string{"listen": ":99999"}}, "listen"},
		{"bad database url", Sources{Flags: map[string]string{"database_url": "mysql://x"}}, "database_url"},
		{"empty sqlite path", Sources{Flags: map[string]string{"database_url": "sqlite:"}}, "database_url"},
		{"relative public url", Sources{Flags: map[string]string{"public_url": "localhost:8080"}}, "public_url"},
		{"ftp public url", Sources{Flags: map[string]string{"public_url": "ftp://x"}}, "public_url"},
		{"short token key", Sources{Env: []string{"LIVECLASS_TOKEN_KEY=short"}}, "token_key"},
		{"bad admin email", Sources{Env: []string{"LIVECLASS_ADMIN_EMAIL=nobody"}}, "admin_email"},
		{"short admin password", Sources{Env: []string{"LIVECLASS_ADMIN_PASSWORD=abc"}}, "admin_password"},
		{"bad log format", Sources{Flags: map[string]string{"log_format": "xml"}}, "log_format"},
		{"bad log level", Sources{Env: []string{"LIVECLASS_LOG_LEVEL=loud"}}, "log_level"},
		{"bad bool env", Sources{Env: []string{"LIVECLASS_SIGNUP_ENABLED=yes please"}}, "signup_enabled"},
		{"negative rate limit", Sources{Flags: map[string]string{"signin_rate_limit": "-1"}}, "signin_rate_limit"},
		{"bad duration", Sources{Flags: map[string]string{"shutdown_timeout": "soon"}}, "shutdown_timeout"},
		{"zero duration", Sources{Flags: map[string]string{"shutdown_timeout": "0s"}}, "shutdown_timeout"},
		{"empty data dir", Sources{Flags: map[string]string{"data_dir": " "}}, "data_dir"},
		{"udp port out of range", Sources{Flags: map[string]string{"rtc_udp_port": "70000"}}, "rtc_udp_port"},
		{"tcp port not a number", Sources{Env: []string{"LIVECLASS_RTC_TCP_PORT=fallback"}}, "rtc_tcp_port"},
		{"tcp port is the http port", Sources{Flags: map[string]string{"listen": ":7000", "rtc_tcp_port": "7000"}}, "rtc_tcp_port"},
		{"public ip is a host name", Sources{Flags: map[string]string{"rtc_public_ip": "media.example.org"}}, "rtc_public_ip"},
		{"bad loopback bool", Sources{File: writeFile(t, "lb.yaml", "rtc_loopback_candidates: sometimes\n")}, "rtc_loopback_candidates"},
		{"turn without credential", Sources{Flags: map[string]string{"turn_port": "3478"}}, "turn_port"},
		{"turn without password", Sources{Flags: map[string]string{"turn_port": "3478", "turn_username": "class"}}, "turn_port"},
		{"turn credential without port", Sources{Env: []string{"LIVECLASS_TURN_USERNAME=class", "LIVECLASS_TURN_PASSWORD=long-enough"}}, "turn_port"},
		{"turn on the ice port", Sources{Env: []string{"LIVECLASS_TURN_PORT=7882", "LIVECLASS_TURN_USERNAME=class", "LIVECLASS_TURN_PASSWORD=long-enough"}}, "turn_port"},
		{"short turn password", Sources{Env: []string{"LIVECLASS_TURN_PORT=3478", "LIVECLASS_TURN_USERNAME=class", "LIVECLASS_TURN_PASSWORD=short", "LIVECLASS_RTC_PUBLIC_IP=203.0.113.7"}}, "turn_password"},
		{"turn relay would be loopback", Sources{Env: []string{"LIVECLASS_TURN_PORT=3478", "LIVECLASS_TURN_USERNAME=class", "LIVECLASS_TURN_PASSWORD=long-enough"}}, "turn_port"},
		{"zero end grace", Sources{Flags: map[string]string{"live_end_grace": "0s"}}, "live_end_grace"},
		{"bad end grace", Sources{Env: []string{"LIVECLASS_LIVE_END_GRACE=ten minutes"}}, "live_end_grace"},
		{"negative webrtc viewers", Sources{Flags: map[string]string{"broadcast_max_webrtc_viewers": "-1"}}, "broadcast_max_webrtc_viewers"},
		{"webrtc viewers not a number", Sources{Env: []string{"LIVECLASS_BROADCAST_MAX_WEBRTC_VIEWERS=many"}}, "broadcast_max_webrtc_viewers"},
		{"long hls segments", Sources{Flags: map[string]string{"hls_segment_duration": "6s"}}, "hls_segment_duration"},
		{"hls without ffmpeg", Sources{File: writeFile(t, "f.yaml", "ffmpeg: \"\"\n")}, "ffmpeg"},
		{"bad hls bool", Sources{Env: []string{"LIVECLASS_HLS_ENABLED=perhaps"}}, "hls_enabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.src)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !IsError(err) {
				t.Fatalf("error %v is not a config.Error", err)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *config.Error", err)
			}
			if ce.Key != tt.key {
				t.Fatalf("error %q names key %q, want %q", err, ce.Key, tt.key)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("message %q does not mention %q", err, tt.key)
			}
		})
	}
}

// TestFileConfigMatchesKeys keeps the strict YAML struct and the key table
// in step: a key missing from fileConfig would be refused in files.
func TestFileConfigMatchesKeys(t *testing.T) {
	fields := map[string]bool{}
	ty := reflect.TypeFor[fileConfig]()
	for i := range ty.NumField() {
		fields[ty.Field(i).Tag.Get("yaml")] = true
	}
	for _, k := range Keys() {
		if !fields[k.Name] {
			t.Errorf("key %q has no fileConfig field", k.Name)
		}
		delete(fields, k.Name)
	}
	for f := range fields {
		t.Errorf("fileConfig field %q is not in Keys", f)
	}
}

func TestTokenKeyGeneratedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Load(Sources{Flags: map[string]string{"data_dir": dir}})
	if err != nil {
		t.Fatal(err)
	}
	// Several starts at once on a fresh data dir agree on one key.
	keys := make([]string, 4)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cfg
			if err := c.ResolveTokenKey(); err != nil {
				t.Error(err)
			}
			keys[i] = c.TokenKey
		}()
	}
	wg.Wait()
	for _, k := range keys {
		if len(k) != 64 || k != keys[0] {
			t.Fatalf("keys differ or have the wrong length: %q", keys)
		}
	}
	st, err := os.Stat(filepath.Join(dir, TokenKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	again := cfg
	if err := again.ResolveTokenKey(); err != nil || again.TokenKey != keys[0] {
		t.Fatalf("second start: key %q err %v, want the stored key", again.TokenKey, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("data dir holds %d files, want only the key", len(entries))
	}

	// A configured key wins and no file is read.
	given := cfg
	given.TokenKey = strings.Repeat("x", 32)
	if err := given.ResolveTokenKey(); err != nil || given.TokenKey != strings.Repeat("x", 32) {
		t.Fatalf("configured key replaced: %q %v", given.TokenKey, err)
	}

	// A truncated key file is refused, not silently used.
	if err := os.WriteFile(filepath.Join(dir, TokenKeyFile), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	if err := bad.ResolveTokenKey(); !IsError(err) {
		t.Fatalf("short key file: err %v, want a config error", err)
	}
}
