// Package config is liveclass's one typed configuration. Values come, each
// overriding the one before, from built-in defaults, an optional YAML file,
// LIVECLASS_* environment variables and command-line flags. Every key is
// declared once, in the keys table, so that the file, the environment, the
// flags, the error messages and the docs cannot drift apart.
package config

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// Config is everything liveclass is told from outside.
type Config struct {
	// Listen is the HTTP listen address (host:port).
	Listen string
	// DataDir holds the SQLite database, the token key and other local files.
	DataDir string
	// DatabaseURL is sqlite:<path> or postgres://...
	DatabaseURL string
	// PublicURL is the absolute base URL users reach the server at, used
	// in links and join URLs.
	PublicURL string
	// TokenKey signs join tokens and CSRF tokens (after key derivation).
	// Empty until ResolveTokenKey fills it from the key file.
	TokenKey string
	// SignupEnabled lets anyone create a STUDENT account.
	SignupEnabled bool
	// AdminEmail and AdminPassword create the first admin when no admin
	// exists; the password is generated and printed once when empty.
	AdminEmail    string
	AdminPassword string
	// LogFormat is text or json; LogLevel is debug, info, warn or error.
	LogFormat string
	LogLevel  string
	// Introspection allows GraphQL schema introspection.
	Introspection bool
	// Demo creates demo users and classes on start (once).
	Demo bool
	// SigninRateLimit is the sign-in and sign-up attempts allowed per
	// client address per minute; 0 switches the limit off (load tests).
	SigninRateLimit int
	// TrustProxy takes the client address from X-Forwarded-For, for rate
	// limits behind a reverse proxy.
	TrustProxy bool
	// ShutdownTimeout bounds how long a graceful shutdown waits for
	// requests in flight.
	ShutdownTimeout time.Duration
	// RTCUDPPort is the one UDP port the ICE of every participant of every
	// live class runs on; 0 picks a free port (tests).
	RTCUDPPort int
	// RTCTCPPort is the ICE-TCP fallback port; 0 picks a free port.
	RTCTCPPort int
	// RTCPublicIP, when set, is advertised to browsers instead of the
	// machine's own addresses (a server behind 1:1 NAT).
	RTCPublicIP string
	// RTCLoopbackCandidates also offers loopback addresses, so that a
	// browser on the same machine always connects.
	RTCLoopbackCandidates bool
	// TURNPort is the UDP port of the embedded TURN server; 0 leaves it
	// off. TURNUsername and TURNPassword are its one credential.
	TURNPort     int
	TURNUsername string
	TURNPassword string
	// LiveEndGrace is how long after its end time a live class with nobody
	// left in it is ended.
	LiveEndGrace time.Duration
	// BroadcastMaxWebRTCViewers is how many WHEP viewers one broadcast
	// takes; the next are sent to HLS. 0 sends every viewer to HLS.
	BroadcastMaxWebRTCViewers int
	// HLSEnabled packages broadcasts as HLS with ffmpeg.
	HLSEnabled bool
	// HLSDir holds the HLS playlists and segments being written; derived
	// from DataDir when empty.
	HLSDir string
	// HLSSegmentDuration is the target length of an HLS segment (≤ 2 s).
	HLSSegmentDuration time.Duration
	// FFmpeg is the ffmpeg binary that packages HLS.
	FFmpeg string
}

// Key describes one configuration key; Keys lists them all.
type Key struct {
	// Name is the key in the YAML file, e.g. "data_dir".
	Name string
	// Default is the default as shown to users ("" when derived or empty).
	Default string
	// Flag is the command-line flag without dashes, empty when the key has
	// none (secrets stay off the command line, where ps would show them).
	Flag string
	// Secret keys also accept LIVECLASS_<NAME>_FILE naming a file that
	// holds the value.
	Secret bool
	// Bool keys are flags that take no value.
	Bool bool
	// Usage is one line for --help and the docs.
	Usage string

	set func(c *Config, v string) error
}

// Env is the key's environment variable.
func (k Key) Env() string { return EnvPrefix + strings.ToUpper(k.Name) }

// EnvPrefix starts every environment variable liveclass reads.
const EnvPrefix = "LIVECLASS_"

// ConfigFileEnv names a config file, like --config.
const ConfigFileEnv = EnvPrefix + "CONFIG"

// testEnvPrefix is reserved for the test suite (LIVECLASS_TEST_DATABASE_URL)
// and therefore not an unknown key.
const testEnvPrefix = EnvPrefix + "TEST_"

// TokenKeyFile is the name, inside the data dir, of the generated key.
const TokenKeyFile = "token.key"

// Keys returns every configuration key, in the order the docs list them.
func Keys() []Key {
	return []Key{
		{Name: "listen", Default: ":8080", Flag: "listen", Usage: "HTTP listen address (host:port)",
			set: func(c *Config, v string) error { c.Listen = v; return nil }},
		{Name: "data_dir", Default: "./data", Flag: "data-dir", Usage: "directory for the SQLite database, the token key and local files",
			set: func(c *Config, v string) error { c.DataDir = v; return nil }},
		{Name: "database_url", Default: "sqlite:<data_dir>/liveclass.db", Flag: "database-url", Secret: true, Usage: "sqlite:<path> or postgres://user:pass@host:port/db",
			set: func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
		{Name: "public_url", Default: "http://localhost:<port>", Flag: "public-url", Usage: "absolute http(s) URL users reach the server at",
			set: func(c *Config, v string) error { c.PublicURL = v; return nil }},
		{Name: "token_key", Default: "generated into <data_dir>/token.key", Secret: true, Usage: "secret of at least 32 characters that signs join tokens",
			set: func(c *Config, v string) error { c.TokenKey = v; return nil }},
		{Name: "signup_enabled", Default: "true", Flag: "signup-enabled", Bool: true, Usage: "let anyone sign up as a student",
			set: boolSetter(func(c *Config, b bool) { c.SignupEnabled = b })},
		{Name: "admin_email", Default: "admin@localhost", Flag: "admin-email", Secret: true, Usage: "email of the admin created when none exists",
			set: func(c *Config, v string) error { c.AdminEmail = v; return nil }},
		{Name: "admin_password", Default: "generated and printed once", Secret: true, Usage: "password of the admin created when none exists",
			set: func(c *Config, v string) error { c.AdminPassword = v; return nil }},
		{Name: "log_format", Default: "text", Flag: "log-format", Usage: "log format: text or json",
			set: func(c *Config, v string) error { c.LogFormat = v; return nil }},
		{Name: "log_level", Default: "info", Flag: "log-level", Usage: "log level: debug, info, warn or error",
			set: func(c *Config, v string) error { c.LogLevel = v; return nil }},
		{Name: "introspection", Default: "true", Flag: "introspection", Bool: true, Usage: "allow GraphQL schema introspection",
			set: boolSetter(func(c *Config, b bool) { c.Introspection = b })},
		{Name: "demo", Default: "false", Flag: "demo", Bool: true, Usage: "create labelled demo users and classes on start (once)",
			set: boolSetter(func(c *Config, b bool) { c.Demo = b })},
		{Name: "signin_rate_limit", Default: "120", Flag: "signin-rate-limit", Usage: "sign-in and sign-up attempts per client address per minute; 0 switches the limit off",
			set: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return fmt.Errorf("want a whole number ≥ 0, got %q", v)
				}
				c.SigninRateLimit = n
				return nil
			}},
		{Name: "trust_proxy", Default: "false", Flag: "trust-proxy", Bool: true, Usage: "take client addresses from X-Forwarded-For (only behind a reverse proxy that sets it)",
			set: boolSetter(func(c *Config, b bool) { c.TrustProxy = b })},
		{Name: "shutdown_timeout", Default: "10s", Flag: "shutdown-timeout", Usage: "how long a graceful shutdown waits for requests in flight",
			set: durationSetter(func(c *Config, d time.Duration) { c.ShutdownTimeout = d })},
		{Name: "rtc_udp_port", Default: "7882", Flag: "rtc-udp-port", Usage: "the one UDP port of every participant's media (ICE); 0 picks a free port",
			set: portSetter(func(c *Config, p int) { c.RTCUDPPort = p })},
		{Name: "rtc_tcp_port", Default: "7881", Flag: "rtc-tcp-port", Usage: "the TCP port of media for networks that block UDP (ICE-TCP); 0 picks a free port",
			set: portSetter(func(c *Config, p int) { c.RTCTCPPort = p })},
		{Name: "rtc_public_ip", Default: "none: the machine's addresses", Flag: "rtc-public-ip", Usage: "IP address browsers reach the media ports at, advertised instead of the machine's own (behind 1:1 NAT)",
			set: func(c *Config, v string) error { c.RTCPublicIP = v; return nil }},
		{Name: "rtc_loopback_candidates", Default: "true", Flag: "rtc-loopback-candidates", Bool: true, Usage: "also offer loopback addresses for media, so that a browser on the same machine always connects",
			set: boolSetter(func(c *Config, b bool) { c.RTCLoopbackCandidates = b })},
		{Name: "turn_port", Default: "0", Flag: "turn-port", Usage: "UDP port of the embedded TURN server; 0 leaves it off",
			set: portSetter(func(c *Config, p int) { c.TURNPort = p })},
		{Name: "turn_username", Default: "none", Flag: "turn-username", Usage: "user name of the embedded TURN server's credential (required with turn_port)",
			set: func(c *Config, v string) error { c.TURNUsername = v; return nil }},
		{Name: "turn_password", Default: "none", Secret: true, Usage: "password of the embedded TURN server's credential (required with turn_port)",
			set: func(c *Config, v string) error { c.TURNPassword = v; return nil }},
		{Name: "live_end_grace", Default: "10m", Flag: "live-end-grace", Usage: "a live class with nobody left in it ends this long after its end time",
			set: durationSetter(func(c *Config, d time.Duration) { c.LiveEndGrace = d })},
		{Name: "broadcast_max_webrtc_viewers", Default: "500", Flag: "broadcast-max-webrtc-viewers", Usage: "WebRTC (WHEP) viewers one broadcast takes before further viewers are sent to HLS; 0 sends all to HLS",
			set: func(c *Config, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return fmt.Errorf("want a whole number ≥ 0, got %q", v)
				}
				c.BroadcastMaxWebRTCViewers = n
				return nil
			}},
		{Name: "hls_enabled", Default: "true", Flag: "hls-enabled", Bool: true, Usage: "package broadcasts as HLS with ffmpeg, for viewers beyond WebRTC and for a CDN",
			set: boolSetter(func(c *Config, b bool) { c.HLSEnabled = b })},
		{Name: "hls_dir", Default: "<data_dir>/hls", Flag: "hls-dir", Usage: "directory of the HLS playlists and segments being written (a RAM disk is fine)",
			set: func(c *Config, v string) error { c.HLSDir = v; return nil }},
		{Name: "hls_segment_duration", Default: "1s", Flag: "hls-segment-duration", Usage: "target length of an HLS segment, at most 2s; H.264 publishers should send a keyframe at least this often",
			set: durationSetter(func(c *Config, d time.Duration) { c.HLSSegmentDuration = d })},
		{Name: "ffmpeg", Default: "ffmpeg", Flag: "ffmpeg", Usage: "the ffmpeg binary that packages HLS (from PATH unless a path is given)",
			set: func(c *Config, v string) error { c.FFmpeg = v; return nil }},
	}
}

func durationSetter(f func(*Config, time.Duration)) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("want a duration such as 10s, got %q", v)
		}
		f(c, d)
		return nil
	}
}

func portSetter(f func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("want a port 0–65535, got %q", v)
		}
		f(c, p)
		return nil
	}
}

func boolSetter(f func(*Config, bool)) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		f(c, b)
		return nil
	}
}

// Default returns the configuration before any file, environment or flag.
// Derived values (database_url, public_url) stay empty until Load.
func Default() Config {
	return Config{
		Listen:          ":8080",
		DataDir:         "./data",
		SignupEnabled:   true,
		AdminEmail:      "admin@localhost",
		LogFormat:       "text",
		LogLevel:        "info",
		Introspection:   true,
		SigninRateLimit: 120,
		ShutdownTimeout: 10 * time.Second,

		RTCUDPPort:            7882,
		RTCTCPPort:            7881,
		RTCLoopbackCandidates: true,
		LiveEndGrace:          10 * time.Minute,

		BroadcastMaxWebRTCViewers: 500,
		HLSEnabled:                true,
		HLSSegmentDuration:        time.Second,
		FFmpeg:                    "ffmpeg",
	}
}

// Error is a configuration mistake; Key names the key at fault. The
// command line reports it and exits with status 2.
type Error struct {
	Key    string // e.g. "listen", or the environment variable for unknown ones
	Source string // where the value came from: a file, an environment variable, a flag
	Msg    string
}

func (e *Error) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("config: %s (from %s): %s", e.Key, e.Source, e.Msg)
	}
	return fmt.Sprintf("config: %s: %s", e.Key, e.Msg)
}

// IsError reports whether err is a configuration error.
func IsError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// Sources is where Load reads from.
type Sources struct {
	// File is a YAML file path; empty for none (then $LIVECLASS_CONFIG).
	File string
	// Env is the environment as os.Environ returns it.
	Env []string
	// Flags holds the flags that were set on the command line, keyed by
	// key name (not flag name).
	Flags map[string]string
}

// Load builds the configuration: defaults, then the file, then the
// environment, then flags, then derived defaults; then validates it.
func Load(src Sources) (Config, error) {
	cfg := Default()
	keys := Keys()
	byName := make(map[string]Key, len(keys))
	for _, k := range keys {
		byName[k.Name] = k
	}

	env := make(map[string]string)
	for _, kv := range src.Env {
		name, val, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(name, EnvPrefix) {
			env[name] = val
		}
	}

	file := src.File
	if file == "" {
		file = env[ConfigFileEnv]
	}
	if file != "" {
		if err := applyFile(&cfg, file, byName); err != nil {
			return Config{}, err
		}
	}
	if err := applyEnv(&cfg, env, keys); err != nil {
		return Config{}, err
	}
	for name, v := range src.Flags {
		k, ok := byName[name]
		if !ok {
			return Config{}, &Error{Key: name, Msg: "unknown key"}
		}
		if err := k.set(&cfg, v); err != nil {
			return Config{}, &Error{Key: name, Source: "flag --" + k.Flag, Msg: err.Error()}
		}
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = "sqlite:" + filepath.Join(cfg.DataDir, "liveclass.db")
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = derivePublicURL(cfg.Listen)
	}
	if cfg.HLSDir == "" {
		cfg.HLSDir = filepath.Join(cfg.DataDir, "hls")
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// scalar takes any single YAML value as a string, so that the key's own
// parser (shared with the environment and flags) reports bad values by
// key name rather than by Go field name.
type scalar struct {
	val string
	set bool
	bad bool
}

// UnmarshalYAML implements yaml.InterfaceUnmarshaler.
func (s *scalar) UnmarshalYAML(unmarshal func(any) error) error {
	var x any
	if err := unmarshal(&x); err != nil {
		return err
	}
	switch t := x.(type) {
	case nil:
		// "key:" with no value leaves the default alone.
	case map[string]any, []any:
		s.bad, s.set = true, true
	default:
		s.val, s.set = fmt.Sprint(t), true
	}
	return nil
}

// fileConfig mirrors Keys for strict YAML decoding: a key that is not a
// field here is refused by the decoder. TestFileConfigMatchesKeys keeps
// the two in step.
type fileConfig struct {
	Listen          scalar `yaml:"listen"`
	DataDir         scalar `yaml:"data_dir"`
	DatabaseURL     scalar `yaml:"database_url"`
	PublicURL       scalar `yaml:"public_url"`
	TokenKey        scalar `yaml:"token_key"`
	SignupEnabled   scalar `yaml:"signup_enabled"`
	AdminEmail      scalar `yaml:"admin_email"`
	AdminPassword   scalar `yaml:"admin_password"`
	LogFormat       scalar `yaml:"log_format"`
	LogLevel        scalar `yaml:"log_level"`
	Introspection   scalar `yaml:"introspection"`
	Demo            scalar `yaml:"demo"`
	SigninRateLimit scalar `yaml:"signin_rate_limit"`
	TrustProxy      scalar `yaml:"trust_proxy"`
	ShutdownTimeout scalar `yaml:"shutdown_timeout"`

	RTCUDPPort            scalar `yaml:"rtc_udp_port"`
	RTCTCPPort            scalar `yaml:"rtc_tcp_port"`
	RTCPublicIP           scalar `yaml:"rtc_public_ip"`
	RTCLoopbackCandidates scalar `yaml:"rtc_loopback_candidates"`
	TURNPort              scalar `yaml:"turn_port"`
	TURNUsername          scalar `yaml:"turn_username"`
	TURNPassword          scalar `yaml:"turn_password"`
	LiveEndGrace          scalar `yaml:"live_end_grace"`

	BroadcastMaxWebRTCViewers scalar `yaml:"broadcast_max_webrtc_viewers"`
	HLSEnabled                scalar `yaml:"hls_enabled"`
	HLSDir                    scalar `yaml:"hls_dir"`
	HLSSegmentDuration        scalar `yaml:"hls_segment_duration"`
	FFmpeg                    scalar `yaml:"ffmpeg"`
}

func applyFile(cfg *Config, path string, byName map[string]Key) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &Error{Key: "config", Msg: err.Error()}
	}
	var fc fileConfig
	err = yaml.NewDecoder(bytes.NewReader(data), yaml.Strict()).Decode(&fc)
	// An empty or comment-only file decodes to io.EOF: a valid, empty config.
	if err != nil && !errors.Is(err, io.EOF) {
		key := "config"
		msg := err.Error()
		// The decoder's message for an unknown key is `[l:c] unknown field "x"`
		// followed by a source excerpt; lift the key out so it leads.
		if _, after, ok := strings.Cut(msg, `unknown field "`); ok {
			if name, _, ok := strings.Cut(after, `"`); ok {
				key, msg = name, "unknown key"
			}
		}
		return &Error{Key: key, Source: path, Msg: firstLine(msg)}
	}
	v := reflect.ValueOf(fc)
	t := v.Type()
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("yaml")
		s := v.Field(i).Interface().(scalar)
		if !s.set {
			continue
		}
		if s.bad {
			return &Error{Key: name, Source: path, Msg: "must be a single value, not a list or map"}
		}
		if err := byName[name].set(cfg, s.val); err != nil {
			return &Error{Key: name, Source: path, Msg: err.Error()}
		}
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func applyEnv(cfg *Config, env map[string]string, keys []Key) error {
	known := map[string]bool{ConfigFileEnv: true}
	for _, k := range keys {
		known[k.Env()] = true
		if k.Secret {
			known[k.Env()+"_FILE"] = true
		}
	}
	for name := range env {
		if !known[name] && !strings.HasPrefix(name, testEnvPrefix) {
			return &Error{Key: name, Source: "environment", Msg: "unknown variable (see liveclass serve --help for the keys)"}
		}
	}
	for _, k := range keys {
		v, direct := env[k.Env()]
		if k.Secret {
			if path, ok := env[k.Env()+"_FILE"]; ok {
				if direct {
					return &Error{Key: k.Name, Source: "environment", Msg: fmt.Sprintf("set both %s and %s_FILE; use one", k.Env(), k.Env())}
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return &Error{Key: k.Name, Source: k.Env() + "_FILE", Msg: err.Error()}
				}
				// Files written by editors and secret managers end in a newline
				// that is not part of the secret.
				v, direct = strings.TrimRight(string(b), "\r\n"), true
			}
		}
		if !direct {
			continue
		}
		if err := k.set(cfg, v); err != nil {
			return &Error{Key: k.Name, Source: k.Env(), Msg: err.Error()}
		}
	}
	return nil
}

func derivePublicURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://localhost"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Validate checks every value and the rules between them.
func (c Config) Validate() error {
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return &Error{Key: "listen", Msg: fmt.Sprintf("want host:port such as :8080, got %q", c.Listen)}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return &Error{Key: "listen", Msg: fmt.Sprintf("port must be 0–65535, got %q", port)}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return &Error{Key: "data_dir", Msg: "must not be empty"}
	}
	switch {
	case strings.HasPrefix(c.DatabaseURL, "sqlite:"):
		if strings.TrimPrefix(c.DatabaseURL, "sqlite:") == "" {
			return &Error{Key: "database_url", Msg: "sqlite: needs a file path, e.g. sqlite:./data/liveclass.db"}
		}
	case strings.HasPrefix(c.DatabaseURL, "postgres://"), strings.HasPrefix(c.DatabaseURL, "postgresql://"):
		if _, err := url.Parse(c.DatabaseURL); err != nil {
			return &Error{Key: "database_url", Msg: "not a valid postgres:// URL"}
		}
	default:
		return &Error{Key: "database_url", Msg: "must start with sqlite: or postgres://"}
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return &Error{Key: "public_url", Msg: fmt.Sprintf("must be an absolute http:// or https:// URL without query, got %q", c.PublicURL)}
	}
	if c.TokenKey != "" && len(c.TokenKey) < 32 {
		return &Error{Key: "token_key", Msg: fmt.Sprintf("must be at least 32 characters, got %d", len(c.TokenKey))}
	}
	if _, err := mail.ParseAddress(c.AdminEmail); err != nil || !strings.Contains(c.AdminEmail, "@") || strings.ContainsAny(c.AdminEmail, "<> ") {
		return &Error{Key: "admin_email", Msg: fmt.Sprintf("not an email address: %q", c.AdminEmail)}
	}
	if c.AdminPassword != "" && len(c.AdminPassword) < 8 {
		return &Error{Key: "admin_password", Msg: "must be at least 8 characters"}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return &Error{Key: "log_format", Msg: fmt.Sprintf("want text or json, got %q", c.LogFormat)}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &Error{Key: "log_level", Msg: fmt.Sprintf("want debug, info, warn or error, got %q", c.LogLevel)}
	}
	if c.ShutdownTimeout <= 0 {
		return &Error{Key: "shutdown_timeout", Msg: "must be positive"}
	}
	return c.validateMedia()
}

// validateMedia checks the media plane's keys and the ports against each
// other: two sockets on one port would fail only at start, with a less
// helpful message.
func (c Config) validateMedia() error {
	for _, p := range []struct {
		key string
		n   int
	}{{"rtc_udp_port", c.RTCUDPPort}, {"rtc_tcp_port", c.RTCTCPPort}, {"turn_port", c.TURNPort}} {
		if p.n < 0 || p.n > 65535 {
			return &Error{Key: p.key, Msg: fmt.Sprintf("port must be 0–65535, got %d", p.n)}
		}
	}
	if c.RTCPublicIP != "" && net.ParseIP(c.RTCPublicIP) == nil {
		return &Error{Key: "rtc_public_ip", Msg: fmt.Sprintf("not an IP address: %q (a host name will not do: browsers are given it as an ICE candidate)", c.RTCPublicIP)}
	}
	_, lp, _ := net.SplitHostPort(c.Listen)
	if listenPort, _ := strconv.Atoi(lp); listenPort != 0 && listenPort == c.RTCTCPPort {
		return &Error{Key: "rtc_tcp_port", Msg: fmt.Sprintf("%d is also the HTTP listen port; pick another", c.RTCTCPPort)}
	}
	if c.TURNPort != 0 && c.TURNPort == c.RTCUDPPort {
		return &Error{Key: "turn_port", Msg: fmt.Sprintf("%d is also rtc_udp_port; pick another", c.TURNPort)}
	}
	switch {
	case c.TURNPort != 0 && (c.TURNUsername == "" || c.TURNPassword == ""):
		return &Error{Key: "turn_port", Msg: "the embedded TURN server needs turn_username and turn_password"}
	case c.TURNPort == 0 && (c.TURNUsername != "" || c.TURNPassword != ""):
		return &Error{Key: "turn_port", Msg: "turn_username or turn_password is set but turn_port is 0 (TURN off); set a port to turn it on, or drop the credential"}
	}
	if c.TURNPort != 0 && c.RTCPublicIP == "" && c.RTCLoopbackCandidates {
		// The TURN server's address goes to browsers in their ICE servers;
		// with loopback candidates on and no public IP it would be
		// 127.0.0.1, which only a browser on this machine reaches.
		return &Error{Key: "turn_port", Msg: "the embedded TURN server needs rtc_public_ip (the address browsers reach it at), or rtc_loopback_candidates: false to use the machine's outbound address"}
	}
	if c.TURNPassword != "" && len(c.TURNPassword) < 8 {
		return &Error{Key: "turn_password", Msg: "must be at least 8 characters"}
	}
	if c.LiveEndGrace <= 0 {
		return &Error{Key: "live_end_grace", Msg: "must be positive"}
	}
	return c.validateBroadcast()
}

// validateBroadcast checks the broadcast keys.
func (c Config) validateBroadcast() error {
	if c.BroadcastMaxWebRTCViewers < 0 {
		return &Error{Key: "broadcast_max_webrtc_viewers", Msg: "must not be negative"}
	}
	if !c.HLSEnabled {
		return nil
	}
	if c.HLSSegmentDuration < 100*time.Millisecond || c.HLSSegmentDuration > 2*time.Second {
		return &Error{Key: "hls_segment_duration", Msg: fmt.Sprintf("want 100ms to 2s, got %s", c.HLSSegmentDuration)}
	}
	if c.HLSDir == "" {
		return &Error{Key: "hls_dir", Msg: "must not be empty"}
	}
	if c.FFmpeg == "" {
		return &Error{Key: "ffmpeg", Msg: "must not be empty while hls_enabled is true"}
	}
	return nil
}

// ResolveTokenKey fills TokenKey from <data_dir>/token.key when it was
// not configured, generating that file (32 random bytes, hex, mode 0600)
// on first use so that tokens survive restarts.
func (c *Config) ResolveTokenKey() error {
	if c.TokenKey != "" {
		return nil
	}
	path := filepath.Join(c.DataDir, TokenKeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		key := strings.TrimSpace(string(b))
		if len(key) < 32 {
			return &Error{Key: "token_key", Source: path, Msg: "key file holds fewer than 32 characters; delete it to generate a new one"}
		}
		c.TokenKey = key
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("config: read token key: %w", err)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("config: create data dir: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("config: generate token key: %w", err)
	}
	key := hex.EncodeToString(raw)
	// Write a temporary file, then link it into place: link fails when the
	// name exists, so when two processes start at once on a fresh data dir
	// one key wins and the other process reads it, never a half-written file.
	tmp, err := os.CreateTemp(c.DataDir, ".token.key-*")
	if err != nil {
		return fmt.Errorf("config: write token key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("config: write token key: %w", err)
	}
	if _, err := tmp.WriteString(key + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("config: write token key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("config: write token key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return c.ResolveTokenKey()
		}
		return fmt.Errorf("config: write token key: %w", err)
	}
	c.TokenKey = key
	return nil
}
