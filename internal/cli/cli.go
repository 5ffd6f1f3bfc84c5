// Package cli is liveclass's command line: the subcommands (serve, migrate,
// user, version, loadtest), their flags, and the wiring of the server in
// one run function. It is the only package that knows every other one.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/liveclass/liveclass/internal/config"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // bad flags, arguments or configuration
)

// Env is the process's outside world, passed in so that tests run the
// command line in-process.
type Env struct {
	Args    []string // without the program name
	Environ []string // KEY=value, as os.Environ returns
	Stdout  io.Writer
	Stderr  io.Writer
	Version string
}

// usageError is a mistake in how the command was called: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e Env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the liveclass server", serveCmd},
		{"migrate", "apply database migrations and exit", migrateCmd},
		{"user", "manage accounts: add, list, set-role, reset-password", userCmd},
		{"loadtest", "load-test a running server (loadtest join)", loadtestCmd},
		{"version", "print the version", func(_ context.Context, e Env, args []string) error {
			fs := newFlagSet("version", "", "print the version")
			if err := parse(fs, e, args); err != nil {
				return err
			}
			fmt.Fprintln(e.Stdout, "liveclass", e.Version)
			return nil
		}},
	}
}

// Main runs the command line and returns the process's exit code.
func Main(ctx context.Context, e Env) int {
	if e.Version == "" {
		e.Version = "dev"
	}
	if len(e.Args) == 0 {
		printUsage(e.Stderr)
		return exitUsage
	}
	name, args := e.Args[0], e.Args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		printUsage(e.Stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			return exitCode(e, c.run(ctx, e, args))
		}
	}
	fmt.Fprintf(e.Stderr, "liveclass: unknown command %q\n\n", name)
	printUsage(e.Stderr)
	return exitUsage
}

func exitCode(e Env, err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintln(e.Stderr, "liveclass:", err)
		return exitUsage
	case config.IsError(err):
		fmt.Fprintln(e.Stderr, "liveclass:", err)
		return exitUsage
	}
	fmt.Fprintln(e.Stderr, "liveclass:", err)
	return exitError
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "liveclass: a self-hosted live-class platform")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: liveclass <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `liveclass <command> --help` for a command's flags.")
}

func newFlagSet(name, argsUsage, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: liveclass %s [flags]%s\n\n%s\n\nFlags:\n", name, argsUsage, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args; --help prints the usage on stdout and ends the
// command successfully, a bad flag prints it on stderr and is exit 2.
func parse(fs *flag.FlagSet, e Env, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(e.Stdout)
		fs.Usage()
		return flag.ErrHelp
	case err != nil:
		fs.SetOutput(e.Stderr)
		fs.Usage()
		return usagef("%s: %v", fs.Name(), err)
	}
	return nil
}

// configFlags registers the config file flag and the flags of the given
// config keys (all keys with a flag when names is empty); load then builds
// the Config from them, the file and the environment.
type configFlags struct {
	file string
	vals map[string]*flagValue // by key name
}

// flagValue records a flag's raw text so that config parses and checks it
// like a file or environment value, with the same messages.
type flagValue struct {
	s      string
	isBool bool
}

func (v *flagValue) String() string     { return v.s }
func (v *flagValue) Set(s string) error { v.s = s; return nil }
func (v *flagValue) IsBoolFlag() bool   { return v.isBool }

func addConfigFlags(fs *flag.FlagSet, names ...string) *configFlags {
	cf := &configFlags{vals: map[string]*flagValue{}}
	fs.StringVar(&cf.file, "config", "", "YAML config file (or $"+config.ConfigFileEnv+")")
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, k := range config.Keys() {
		if k.Flag == "" || (len(names) > 0 && !want[k.Name]) {
			continue
		}
		v := &flagValue{isBool: k.Bool}
		cf.vals[k.Name] = v
		fs.Var(v, k.Flag, fmt.Sprintf("%s (default %s; $%s)", k.Usage, k.Default, k.Env()))
	}
	return cf
}

func (cf *configFlags) load(fs *flag.FlagSet, e Env) (config.Config, error) {
	set := map[string]string{}
	byFlag := map[string]string{}
	for name := range cf.vals {
		for _, k := range config.Keys() {
			if k.Name == name {
				byFlag[k.Flag] = name
			}
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if name, ok := byFlag[f.Name]; ok {
			set[name] = cf.vals[name].s
		}
	})
	return config.Load(config.Sources{File: cf.file, Env: e.Environ, Flags: set})
}

// newLogger builds the process's logger from the configuration.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated by config
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// noArgs refuses positional arguments where a command takes none.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// readSecretFile reads a password from a file, without its final newline.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
