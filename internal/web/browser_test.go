package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/cdp/jsonv2"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/liveclass/liveclass/internal/store"
)

// chromiumPath finds the browser; a missing one is a failure, not a skip:
// `make test` installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Fatal("chromium not found: run `make test`, which installs it")
	return ""
}

// newBrowser starts a headless Chromium with its own profile and temp dir
// inside the test's temp dir, for one person on their own machine; it is
// stopped when the test ends. (A second browser context in one process
// would be lighter, but its first tab does not answer DOM queries after
// navigating under chromedp v0.23.)
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.WindowSize(390, 1200), // a phone's width: the pages must work there
		// UTC makes the times the test types mean what the server reads;
		// the form's zone handling is covered by the handler tests.
		chromedp.Env("TMPDIR="+tmp, "TZ=UTC"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// byRole finds elements as assistive technology does: by their computed
// role and accessible name in Chromium's accessibility tree (an empty role
// matches any). Nodes the tree ignores (hidden ones) do not count, so a
// hidden Join link is not found until the page reveals it.
func byRole(role, name string) chromedp.QueryOption {
	return chromedp.ByFunc(axLookup(role, name))
}

// axLookup asks the accessibility tree, then hands the matches to chromedp
// through a marker attribute and a CSS query, the lookup chromedp tracks
// nodes for.
func axLookup(role, name string) func(context.Context, *chromedp.Target, *chromedp.Node) ([]cdp.NodeID, error) {
	marker := fmt.Sprintf("%x", sha256.Sum256([]byte(role+"\x00"+name)))[:16]
	return func(ctx context.Context, tg *chromedp.Target, n *chromedp.Node) ([]cdp.NodeID, error) {
		root := n.BackendNodeID
		if root == 0 {
			// The document that replaced the last one after a click
			// arrives without its backend id; ask for it.
			d, err := cdp.Call(ctx, tg, dom.DescribeNode, dom.DescribeNodeParams{NodeID: n.NodeID})
			if err != nil {
				return nil, err
			}
			root = d.Node.BackendNodeID
		}
		// A query sent while a click's navigation replaces the document
		// can go unanswered; give up on it and let chromedp retry on the
		// new document.
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		res, err := cdp.Call(qctx, tg, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{
			BackendNodeID: root, AccessibleName: name, Role: role,
		})
		cancel()
		if err != nil {
			return nil, err
		}
		found := 0
		for _, ax := range res.Nodes {
			if ax.Ignored || ax.BackendDOMNodeID == 0 || (role == "" && textRole(ax)) {
				continue
			}
			obj, err := cdp.Call(ctx, tg, dom.ResolveNode, dom.ResolveNodeParams{BackendNodeID: ax.BackendDOMNodeID})
			if err != nil || obj.Object == nil {
				continue // the node went away meanwhile (a navigation)
			}
			_, err = cdp.Call(ctx, tg, runtime.CallFunctionOn, runtime.CallFunctionOnParams{
				FunctionDeclaration: `function(m) { if (this.setAttribute) this.setAttribute("data-ax", m); }`,
				ObjectID:            obj.Object.ObjectID,
				Arguments:           []*runtime.CallArgument{{Value: jsonv2.Value(strconv.Quote(marker))}},
			})
			if err != nil {
				return nil, err
			}
			found++
		}
		if found == 0 {
			return nil, nil
		}
		q, err := cdp.Call(ctx, tg, dom.QuerySelectorAll, dom.QuerySelectorAllParams{
			NodeID: n.NodeID, Selector: `[data-ax="` + marker + `"]`,
		})
		if err != nil {
			return nil, err
		}
		return q.NodeIDs, nil
	}
}

// textRole reports whether ax is the text inside a control rather than
// the control: with any role allowed, a label's text carries the name too.
func textRole(ax *accessibility.Node) bool {
	if ax.Role == nil {
		return true
	}
	var r string
	if err := json.Unmarshal(ax.Role.Value, &r); err != nil {
		return true
	}
	switch r {
	case "StaticText", "InlineTextBox", "LabelText", "generic", "none":
		return true
	}
	return false
}

func label(role, name string) string { return role + " " + strings.TrimSpace(name) }

// click clicks the element with role and name once it is visible.
func click(role, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(label(role, name), byRole(role, name), chromedp.NodeVisible)
}

// follow clicks the link or button with role and name and waits until the
// page it leads to has loaded: an accessibility query sent while one
// document replaces another can stall the tab.
func follow(role, name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil, click(role, name))(ctx, tg)
		return chromedp.Void{}, err
	}
}

// typeInto types text into the field labelled name.
func typeInto(name, text string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(label("textbox", name), text, byRole("textbox", name), chromedp.NodeVisible)
}

// setField replaces the value of the field labelled name with role role
// (date and number pickers take no keystrokes portably).
func setField(role, name, value string) chromedp.Action[chromedp.Void] {
	return chromedp.SetValue(label(role, name), value, byRole(role, name), chromedp.NodeVisible)
}

// waitText waits until the page's visible text contains s.
func waitText(s string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](fmt.Sprintf("document.body && document.body.innerText.includes(%q)", s),
			chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond))(ctx, tg)
		if err != nil {
			return chromedp.Void{}, fmt.Errorf("waiting for text %q: %w", s, err)
		}
		return chromedp.Void{}, nil
	}
}

// everyControlNamed fails the step when a control on the page has no
// accessible name: a screen-reader user could not tell what it does.
func everyControlNamed() chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		doc, err := chromedp.Nodes(chromedp.CSS("html"))(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		res, err := cdp.Call(ctx, tg, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{BackendNodeID: doc[0].BackendNodeID})
		if err != nil {
			return chromedp.Void{}, err
		}
		var unnamed []string
		for _, ax := range res.Nodes {
			if ax.Ignored || ax.Role == nil {
				continue
			}
			var role, name string
			_ = json.Unmarshal(ax.Role.Value, &role)
			if ax.Name != nil {
				_ = json.Unmarshal(ax.Name.Value, &name)
			}
			switch role {
			case "button", "link", "textbox", "searchbox", "combobox", "checkbox", "spinbutton", "radio", "menuitem":
				if strings.TrimSpace(name) == "" {
					unnamed = append(unnamed, fmt.Sprintf("%s (backend node %d)", role, ax.BackendDOMNodeID))
				}
			}
		}
		if len(unnamed) > 0 {
			return chromedp.Void{}, fmt.Errorf("controls without an accessible name: %s", strings.Join(unnamed, ", "))
		}
		return chromedp.Void{}, nil
	}
}

// step runs actions with a deadline and names the step in a failure.
func step(t *testing.T, ctx context.Context, what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for i, a := range actions {
		if err := chromedp.Do(sctx, a); err != nil {
			var where string
			if loc, lerr := chromedp.Run(ctx, chromedp.Location()); lerr == nil {
				where = " at " + loc
			}
			t.Fatalf("%s: action %d of %d%s: %v", what, i+1, len(actions), where, err)
		}
	}
}

func TestBrowserEnrollAndJoin(t *testing.T) {
	e := newEnv(t, envOptions{})
	mentorUser := e.user("mentor@example.com", "Mia Mentor", store.RoleMentor)
	const wait = 10 * time.Second
	base := e.srv.URL

	// A student signs up.
	student := newBrowser(t)
	step(t, student, "student signs up", wait,
		chromedp.Navigate(base+"/"),
		everyControlNamed(),
		follow("link", "Sign up"),
		everyControlNamed(),
		typeInto("Name", "Stu Dent"),
		typeInto("Email", "stu@example.com"),
		// A password field has no textbox role in the tree, only its label.
		chromedp.SendKeys("password", "correct horse", byRole("", "Password"), chromedp.NodeVisible),
		follow("button", "Create account"),
		waitText("Signed in as Stu Dent", wait),
	)

	// A mentor signs in and creates a class through the form: one seat,
	// starting 15 minutes and about 5 seconds from now, so that the join
	// window opens about 5 seconds from now.
	mentor := newBrowser(t)
	step(t, mentor, "mentor opens the class form", wait,
		chromedp.Navigate(base+"/signin"),
		typeInto("Email", mentorUser.Email),
		chromedp.SendKeys("password", "password123", byRole("", "Password"), chromedp.NodeVisible),
		follow("button", "Sign in"),
		follow("link", "Teaching"),
		follow("link", "New class"),
		everyControlNamed(),
	)
	// The form takes whole seconds: round up, never down, so that the
	// student has the full 5 seconds to get to the class page.
	start := time.Now().UTC().Add(15*time.Minute + 5*time.Second).Truncate(time.Second).Add(time.Second)
	title := "Chromium class " + start.Format("150405")
	step(t, mentor, "mentor creates a class", wait,
		typeInto("Title", title),
		setField("", "Starts", start.Format("2006-01-02T15:04:05")),
		setField("", "Ends", start.Add(time.Hour).Format("2006-01-02T15:04:05")),
		setField("spinbutton", "Seats", "1"),
		typeInto("Category", "Testing"),
		follow("button", "Create class"),
		waitText("The class is scheduled.", wait),
		everyControlNamed(),
	)

	// The student finds it by title, opens it and enrolls.
	step(t, student, "student finds the class", wait,
		chromedp.Navigate(base+"/"),
		chromedp.SendKeys("search", title, byRole("searchbox", "Search by title"), chromedp.NodeVisible),
		follow("button", "Filter"),
		follow("link", title),
		waitText("Seats left", wait),
		follow("button", "Enroll"),
		waitText("You are enrolled.", wait),
		everyControlNamed(),
	)
	classPage, err := chromedp.Run(student, chromedp.Location())
	if err != nil || !strings.Contains(classPage, "/classes/") {
		t.Fatalf("after enrolling the student is at %q (%v), want the class page", classPage, err)
	}
	// Join is on the page but hidden until the window opens, and nothing
	// reloads the page: the module must reveal it by itself.
	opens := start.Add(-15 * time.Minute)
	if time.Now().Before(opens) {
		hidden, err := chromedp.Run(student, chromedp.Evaluate[bool](`!!document.querySelector("a[data-opens-at][hidden]")`))
		if err != nil || !hidden {
			t.Fatalf("before the window opens, Join should be hidden and waiting (got %v, %v)", hidden, err)
		}
	} else {
		t.Fatalf("the scenario took too long: the join window opened before the student saw the class page")
	}
	step(t, student, "Join appears when the window opens", time.Until(opens)+wait,
		chromedp.WaitVisible(label("link", "Join class"), byRole("link", "Join class")),
	)
	if early := time.Until(opens); early > 500*time.Millisecond {
		t.Fatalf("Join appeared %v before the window opens", early)
	}
	if loc, err := chromedp.Run(student, chromedp.Location()); err != nil || loc != classPage {
		t.Fatalf("the page went from %s to %q (%v): Join must appear without a reload", classPage, loc, err)
	}
	step(t, student, "student joins", wait,
		follow("link", "Join class"),
		waitText("The classroom opens on this page.", wait),
		waitText("ATTENDEE", wait),
	)

	// A second student signs up and is told the one seat is gone.
	second := newBrowser(t)
	step(t, second, "second student is refused", wait,
		chromedp.Navigate(base+"/signup"),
		typeInto("Name", "Sec Ond"),
		typeInto("Email", "second@example.com"),
		chromedp.SendKeys("password", "correct horse", byRole("", "Password"), chromedp.NodeVisible),
		follow("button", "Create account"),
		waitText("Signed in as Sec Ond", wait),
		chromedp.SendKeys("search", title, byRole("searchbox", "Search by title"), chromedp.NodeVisible),
		follow("button", "Filter"),
		follow("link", title),
		waitText("This class is full.", wait),
	)
	n, err := chromedp.Run(second, chromedp.Evaluate[int](`[...document.querySelectorAll("button")].filter(b => b.textContent.trim() === "Enroll").length`))
	if err != nil || n != 0 {
		t.Fatalf("a full class offers Enroll (%d buttons, %v)", n, err)
	}

	// A picture of the class page as the enrolled student sees it.
	step(t, student, "student returns to the class page", wait,
		chromedp.Navigate(classPage), waitText("You are enrolled.", wait))
	shot, err := chromedp.Run(student, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
	if err != nil || len(shot) == 0 {
		t.Fatalf("screenshot: %v", err)
	}
	file := filepath.Join(t.TempDir(), "class-page.png")
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("LIVECLASS_SCREENSHOT_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "class-page.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
