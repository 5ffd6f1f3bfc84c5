package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/liveclass/liveclass/client"
	"golang.org/x/sync/errgroup"
)

const loadtestUsage = `Usage: liveclass loadtest <join|healthz|room|audience|broadcast|broadcast-baseline> [flags]

  join     the join path: N students sign up, enroll in a CHIME class that
           starts now, sign in, then loop generateLiveClassToken (and every
           --list-every-th request listLiveClasses) for --duration
  healthz  the same loop over GET /healthz: the HTTP floor to compare with
  room     N WebRTC participants publishing and viewing in live classes
           (liveclass loadtest room --help)
  audience chat fan-out to a broadcast class's audience WebSockets
           (liveclass loadtest audience --help)
  broadcast a WHIP publisher and N WHEP viewers of a broadcast class
           (liveclass loadtest broadcast --help)
  broadcast-baseline
           serve a plain Pion WHIP/WHEP fan-out to measure loadtest
           broadcast against (liveclass loadtest broadcast-baseline --help)

Run it against a server started with --signin-rate-limit 0 (the students all
sign in from this one address) and an admin account it may use.`

func loadtestCmd(ctx context.Context, e Env, args []string) error {
	if len(args) == 0 {
		return usagef("loadtest: missing scenario\n\n%s", loadtestUsage)
	}
	scenario, args := args[0], args[1:]
	switch scenario {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(e.Stdout, loadtestUsage)
		return nil
	case "room":
		return loadRoomCmd(ctx, e, args)
	case "audience":
		return loadAudienceCmd(ctx, e, args)
	case "broadcast":
		return loadBroadcastCmd(ctx, e, args)
	case "broadcast-baseline":
		return loadBaselineCmd(ctx, e, args)
	case "join", "healthz":
	default:
		return usagef("loadtest: unknown scenario %q\n\n%s", scenario, loadtestUsage)
	}
	fs := newFlagSet("loadtest "+scenario, "", loadtestUsage)
	var o loadOptions
	fs.StringVar(&o.url, "url", "http://localhost:8080", "base URL of the server")
	fs.IntVar(&o.concurrency, "concurrency", 16, "requests in flight at once")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long to measure")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "how long to run before measuring")
	var serverPIDs string
	fs.StringVar(&serverPIDs, "server-pid", "", "comma-separated process IDs of the server (and database) on this machine, to report their CPU time per request")
	if scenario == "join" {
		fs.IntVar(&o.users, "users", 50, "students (virtual users); CHIME classes hold 50, so more use several classes")
		fs.IntVar(&o.listEvery, "list-every", 10, "make every n-th request a listLiveClasses (0: never)")
		fs.StringVar(&o.adminEmail, "admin-email", "admin@localhost", "admin account that creates the classes")
		fs.StringVar(&o.adminPasswordFile, "admin-password-file", "", "file holding the admin's password (or $LIVECLASS_ADMIN_PASSWORD)")
	}
	if err := parse(fs, e, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	for _, f := range strings.FieldsFunc(serverPIDs, func(r rune) bool { return r == ',' || r == ' ' }) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return usagef("loadtest: --server-pid: %q is not a process ID", f)
		}
		o.serverPIDs = append(o.serverPIDs, pid)
	}
	if o.concurrency < 1 || o.duration <= 0 || o.warmup < 0 {
		return usagef("loadtest: --concurrency must be ≥ 1, --duration > 0 and --warmup ≥ 0")
	}
	hc := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			// One kept-alive connection per worker: the loop measures the
			// server, not TCP handshakes.
			MaxIdleConns:        o.concurrency,
			MaxIdleConnsPerHost: o.concurrency,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
	defer hc.CloseIdleConnections()

	if scenario == "healthz" {
		url := strings.TrimRight(o.url, "/") + "/healthz"
		r, err := measure(ctx, o, func(ctx context.Context, worker, i int) (string, error) {
			return "healthz", getOK(ctx, hc, url)
		})
		if err != nil {
			return err
		}
		r.print(e.Stdout, fmt.Sprintf("healthz: %s at concurrency %d", o.duration, o.concurrency))
		return nil
	}

	if o.users < 1 {
		return usagef("loadtest: --users must be ≥ 1")
	}
	password := lookupEnv(e.Environ, "LIVECLASS_ADMIN_PASSWORD")
	if o.adminPasswordFile != "" {
		var err error
		if password, err = readSecretFile(o.adminPasswordFile); err != nil {
			return usagef("loadtest: --admin-password-file: %v", err)
		}
	}
	if password == "" {
		return usagef("loadtest join: the admin's password is needed: --admin-password-file or $LIVECLASS_ADMIN_PASSWORD")
	}
	o.adminPassword = password
	return loadJoin(ctx, e, hc, o)
}

type loadOptions struct {
	url                           string
	users, concurrency, listEvery int
	duration, warmup              time.Duration
	adminEmail, adminPasswordFile string
	adminPassword                 string
	serverPIDs                    []int
}

func loadJoin(ctx context.Context, e Env, hc *http.Client, o loadOptions) error {
	admin := client.New(o.url, client.WithHTTPClient(hc))
	if _, err := admin.Login(ctx, o.adminEmail, o.adminPassword); err != nil {
		return fmt.Errorf("admin sign-in: %w", err)
	}

	// CHIME rooms hold at most 50: N students need ceil(N/50) classes.
	const seats = 50
	start := time.Now().Truncate(time.Minute)
	end := start.Add((o.warmup + o.duration).Truncate(time.Minute) + time.Hour)
	run := strings.ToLower(rand.Text()[:8])
	var classIDs []string
	for i := 0; i < o.users; i += seats {
		c, err := admin.CreateLiveClass(ctx, client.CreateLiveClassInput{
			Title:     fmt.Sprintf("[Load test %s] join path %d", run, len(classIDs)+1),
			StartTime: start, EndTime: end, AWSService: "CHIME",
			RequiresEnrollment: true, AccessLevel: "STUDENT", MaxParticipants: seats,
			Category: "Load test", Level: "BEGINNER", IsFree: true, Tags: []string{"loadtest"},
		})
		if err != nil {
			return fmt.Errorf("create class: %w", err)
		}
		classIDs = append(classIDs, c.ID)
	}

	// Each student signs up and enrolls, then signs in again: sign-in is
	// part of the join path and timed on its own.
	users := make([]*client.Client, o.users)
	signin := make([]time.Duration, o.users)
	password := rand.Text()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.concurrency)
	for i := range users {
		g.Go(func() error {
			email := fmt.Sprintf("student%d-%s@loadtest.liveclass.local", i, run)
			c := client.New(o.url, client.WithHTTPClient(hc))
			if _, err := c.Signup(gctx, email, password, fmt.Sprintf("Load student %d", i)); err != nil {
				return fmt.Errorf("sign-up of %s: %w", email, err)
			}
			if _, err := c.Enroll(gctx, classIDs[i/seats]); err != nil {
				return fmt.Errorf("enroll %s: %w", email, err)
			}
			t0 := time.Now()
			if _, err := c.Login(gctx, email, password); err != nil {
				return fmt.Errorf("sign-in of %s: %w", email, err)
			}
			signin[i] = time.Since(t0)
			users[i] = c
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	listFilter := map[string]any{"title": map[string]any{"beginsWith": "[Load test " + run + "]"}}
	r, err := measure(ctx, o, func(ctx context.Context, worker, i int) (string, error) {
		u := (worker + i*o.concurrency) % len(users)
		if o.listEvery > 0 && i%o.listEvery == o.listEvery-1 {
			_, err := users[u].ListLiveClasses(ctx, listFilter, 20, "")
			return "listLiveClasses", err
		}
		_, err := users[u].GenerateLiveClassToken(ctx, classIDs[u/seats])
		return "generateLiveClassToken", err
	})
	if err != nil {
		return err
	}
	slices.Sort(signin)
	r.print(e.Stdout, fmt.Sprintf("join path: %s at concurrency %d, %d students in %d class(es)", o.duration, o.concurrency, o.users, len(classIDs)))
	fmt.Fprintf(e.Stdout, "sign-in (once per student, before measuring): p50 %s  p99 %s\n",
		fmtDur(percentile(signin, 0.50)), fmtDur(percentile(signin, 0.99)))
	return nil
}

func lookupEnv(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

func getOK(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// opFunc makes worker's i-th request and says which operation it was.
type opFunc func(ctx context.Context, worker, i int) (op string, err error)

type opStats struct {
	lat    []time.Duration
	errors map[string]int
}

type result struct {
	elapsed   time.Duration
	cpu       time.Duration
	serverCPU []time.Duration // per --server-pid, with its descendants
	pids      []int
	ops       map[string]*opStats
}

// measure runs op on o.concurrency workers: for o.warmup unrecorded, then
// for o.duration recorded. It also takes the tester's own CPU time over the
// measured part, to show whether the tester or the server was the limit.
func measure(ctx context.Context, o loadOptions, op opFunc) (result, error) {
	type workerStats map[string]*opStats
	stats := make([]workerStats, o.concurrency)
	warmEnd := time.Now().Add(o.warmup)
	end := warmEnd.Add(o.duration)
	var cpuStart time.Duration
	var serverStart []time.Duration
	var measuring sync.WaitGroup
	measuring.Add(o.concurrency)
	var once sync.Once
	var wg sync.WaitGroup
	for w := range o.concurrency {
		stats[w] = workerStats{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			warm := true
			for i := 0; ; i++ {
				now := time.Now()
				if warm && !now.Before(warmEnd) {
					warm = false
					measuring.Done()
					measuring.Wait() // all workers start measuring together
					once.Do(func() { cpuStart, serverStart = cpuTime(), processTreeCPU(o.serverPIDs) })
				}
				if !now.Before(end) || ctx.Err() != nil {
					if warm {
						measuring.Done()
					}
					return
				}
				t0 := time.Now()
				name, err := op(ctx, w, i)
				d := time.Since(t0)
				if warm {
					continue
				}
				s := stats[w][name]
				if s == nil {
					s = &opStats{lat: make([]time.Duration, 0, 4096), errors: map[string]int{}}
					stats[w][name] = s
				}
				s.lat = append(s.lat, d)
				if err != nil {
					code := client.CodeOf(err)
					if code == "" {
						code = firstWords(err.Error())
					}
					s.errors[code]++
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return result{}, ctx.Err()
	}
	// Requests in flight at the end finish after it: the elapsed time runs
	// until the last one has.
	r := result{elapsed: time.Since(warmEnd), cpu: cpuTime() - cpuStart, ops: map[string]*opStats{}, pids: o.serverPIDs}
	if len(o.serverPIDs) > 0 {
		r.serverCPU = processTreeCPU(o.serverPIDs)
		for i := range r.serverCPU {
			r.serverCPU[i] -= serverStart[i]
		}
	}
	for _, ws := range stats {
		for name, s := range ws {
			t := r.ops[name]
			if t == nil {
				t = &opStats{errors: map[string]int{}}
				r.ops[name] = t
			}
			t.lat = append(t.lat, s.lat...)
			for k, v := range s.errors {
				t.errors[k] += v
			}
		}
	}
	if len(r.ops) == 0 {
		return r, errors.New("loadtest: no request finished in the measured interval")
	}
	return r, nil
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func firstWords(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

func (r result) print(w io.Writer, title string) {
	fmt.Fprintln(w, title)
	var total, errs int
	for _, name := range sortedKeys(r.ops) {
		s := r.ops[name]
		slices.Sort(s.lat)
		n := len(s.lat)
		var ne int
		for _, v := range s.errors {
			ne += v
		}
		total += n
		errs += ne
		fmt.Fprintf(w, "  %-24s %8d  %8.1f/s  p50 %s  p95 %s  p99 %s  max %s  errors %d\n",
			name, n, float64(n)/r.elapsed.Seconds(),
			fmtDur(percentile(s.lat, 0.50)), fmtDur(percentile(s.lat, 0.95)),
			fmtDur(percentile(s.lat, 0.99)), fmtDur(s.lat[n-1]), ne)
		for _, code := range sortedKeys(s.errors) {
			fmt.Fprintf(w, "    error %s: %d\n", code, s.errors[code])
		}
	}
	fmt.Fprintf(w, "  %-24s %8d  %8.1f/s  errors %d\n", "all", total, float64(total)/r.elapsed.Seconds(), errs)
	fmt.Fprintf(w, "tester CPU: %.2fs over %.1fs (%.0f%% of one core)\n",
		r.cpu.Seconds(), r.elapsed.Seconds(), 100*r.cpu.Seconds()/r.elapsed.Seconds())
	var server time.Duration
	for _, d := range r.serverCPU {
		server += d
	}
	if len(r.serverCPU) > 0 && total > 0 {
		perReq := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(total) }
		fmt.Fprintf(w, "server CPU: %.2fs over %.1fs (%.0f%% of one core), %.0fµs per request",
			server.Seconds(), r.elapsed.Seconds(), 100*server.Seconds()/r.elapsed.Seconds(), perReq(server))
		if len(r.serverCPU) > 1 {
			for i, d := range r.serverCPU {
				fmt.Fprintf(w, "; pid %d: %.0fµs", r.pids[i], perReq(d))
			}
		}
		fmt.Fprintln(w)
	}
}

// processTreeCPU is, for each of pids, the user plus system CPU time of
// the process, its reaped children and its live descendants (PostgreSQL's
// backends are children of the postmaster), read from /proc. The server's own cost
// per request, measured this way, does not depend on what else the
// machine runs, unlike its throughput.
func processTreeCPU(pids []int) []time.Duration {
	if len(pids) == 0 {
		return nil
	}
	parent := map[int]int{}
	ticks := map[int]int64{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name (field 2) may hold spaces; fields after it are
		// counted from its closing parenthesis.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		var sum int64
		for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			n, _ := strconv.ParseInt(f[k], 10, 64)
			sum += n
		}
		parent[pid] = ppid
		ticks[pid] = sum
	}
	root := map[int]int{} // pid → index in pids
	for i, p := range pids {
		root[p] = i
	}
	total := make([]time.Duration, len(pids))
	for pid, t := range ticks {
		for p := pid; p > 1; p = parent[p] {
			if i, ok := root[p]; ok {
				// USER_HZ is 100 on Linux for every architecture Go supports.
				total[i] += time.Duration(t) * (time.Second / 100)
				break
			}
		}
	}
	return total
}
