package room

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the classroom free of media and HTTP code: it talks
// to them only through Media and Sink.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/pion/") || dep == "net/http" ||
			strings.HasPrefix(dep, "github.com/liveclass/liveclass/internal/sfu") ||
			strings.HasPrefix(dep, "github.com/liveclass/liveclass/internal/signal") {
			t.Errorf("room depends on %s", dep)
		}
	}
}
