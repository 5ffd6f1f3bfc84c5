// Command liveclass is the liveclass server and its administration tool:
// `liveclass serve` runs the platform, `liveclass help` lists the rest.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/liveclass/liveclass/internal/cli"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts a graceful shutdown, restore the
		// default handling so that a second Ctrl-C ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code := cli.Main(ctx, cli.Env{
		Args:    os.Args[1:],
		Environ: os.Environ(),
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Version: version,
	})
	stop()
	os.Exit(code)
}
