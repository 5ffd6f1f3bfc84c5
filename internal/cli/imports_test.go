package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules keeps the arrows of docs/architecture.md pointing one
// way: the domain packages know nothing of HTTP or media, the media
// packages nothing of SQL or GraphQL, the leaves nothing of liveclass, and
// the public client nothing internal. It reads the real import graph with
// `go list`, as Tailscale's deptest does.
func TestImportRules(t *testing.T) {
	const module = "github.com/liveclass/liveclass/"
	out, err := exec.Command("go", "list", "-e", "-f", "{{.ImportPath}}|{{join .Imports \",\"}}|{{join .Deps \",\"}}", "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v (the go tool must be on PATH)", err)
	}
	type pkg struct{ imports, deps []string }
	pkgs := map[string]pkg{}
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 3 {
			t.Fatalf("go list line %q", line)
		}
		pkgs[strings.TrimPrefix(f[0], module)] = pkg{strings.Split(f[1], ","), strings.Split(f[2], ",")}
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}

	type rule struct {
		pkgs   func(string) bool
		direct bool // check direct imports only, not every dependency
		banned func(string) bool
		why    string
	}
	is := func(names ...string) func(string) bool {
		return func(p string) bool {
			for _, n := range names {
				if p == n || strings.HasPrefix(p, n+"/") {
					return true
				}
			}
			return false
		}
	}
	pion := func(p string) bool { return strings.HasPrefix(p, "github.com/pion/") }
	rules := []rule{
		{is("internal/classes", "internal/room"), true, func(p string) bool { return p == "net/http" || pion(p) },
			"domain rules hold however a request arrives and whichever media plane serves a class"},
		{is("internal/classes", "internal/room"), false, pion,
			"the domain must not pull in the media stack"},
		{is("internal/store"), false, func(p string) bool {
			return p == "net/http" || pion(p) || strings.HasPrefix(p, "github.com/99designs/gqlgen")
		},
			"the store knows records and SQL only"},
		{is("internal/media", "internal/sfu", "internal/hls", "internal/broadcast"), false, func(p string) bool {
			return p == "database/sql" || strings.HasPrefix(p, "github.com/99designs/gqlgen") || strings.HasPrefix(p, "github.com/jackc/") || strings.HasPrefix(p, "modernc.org/sqlite")
		}, "media packages know nothing of SQL or GraphQL"},
		{is("internal/broadcast", "internal/hls", "internal/audience"), false, is(module+"internal/graph", module+"internal/web"),
			"the broadcast plane serves its own HTTP and knows neither the API nor the pages"},
		{is("internal/audience"), false, pion,
			"the audience (chat, polls, reactions for thousands) carries no media"},
		{is("internal/config", "internal/server", "internal/apperr", "internal/jointoken", "internal/ratelimit", "internal/keepalive"), false, func(p string) bool { return strings.HasPrefix(p, module) },
			"leaf packages import no other liveclass package"},
		{is("client"), false, func(p string) bool { return strings.HasPrefix(p, module+"internal/") },
			"the public client cannot depend on internal packages"},
	}
	checked := 0
	for name, p := range pkgs {
		if strings.HasSuffix(name, ".test") || strings.Contains(name, "[") {
			continue
		}
		for _, r := range rules {
			if !r.pkgs(name) {
				continue
			}
			checked++
			list := p.deps
			if r.direct {
				list = p.imports
			}
			for _, d := range list {
				if r.banned(d) {
					t.Errorf("%s imports %s: %s", name, d, r.why)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no package matched a rule")
	}
}
