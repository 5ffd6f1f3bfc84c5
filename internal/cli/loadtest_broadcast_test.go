package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestLoadBroadcast runs the broadcast load test end to end against a
// served instance: the admin creates an IVS class, the tester publishes
// over WHIP and three viewers join over WHEP; every viewer gets frames,
// the report counts packets and delays, and on loopback no video is lost
// once NACKs have repaired what a busy machine dropped.
func TestLoadBroadcast(t *testing.T) {
	flags := mediaFlags()
	flags["signin_rate_limit"] = "0"
	cfg := testConfig(t, t.TempDir(), "", flags)
	srv := start(t, cfg)
	o := bcastOptions{
		url: srv.url, publish: true, viewers: 3, joinRate: 20,
		settle: 2 * time.Second, duration: 2 * time.Second,
		adminEmail: "admin@localhost", adminPassword: adminPassword,
	}
	rep, err := runBroadcastTest(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.print(&out)
	t.Log(out.String())
	if rep.joinsOK != 3 || rep.noFrame != 0 {
		t.Fatalf("%d joins, %d viewers without a frame; want 3 and 0", rep.joinsOK, rep.noFrame)
	}
	if rep.pktsPerSec < 3*50 { // the audio alone is 50 packets a second per viewer
		t.Fatalf("%.0f packets/s received by 3 viewers", rep.pktsPerSec)
	}
	// On loopback NACKs repair what a busy machine drops: of the video
	// sent in the window, what never arrived stays under issue 4's bar
	// for a held level. The audio is not repaired (Opus has FEC): a
	// receiver starved for seconds drops some of it from its socket (up
	// to 16 % at load average 15 to 20, with four seconds of queueing),
	// where a forwarding fault loses most of it.
	if rep.loss > 0.005 || rep.audioLoss > 0.25 {
		t.Fatalf("on loopback %.2f %% of the video never arrived (want < 0.5 %%), %.2f %% of the audio (want < 25 %%)", 100*rep.loss, 100*rep.audioLoss)
	}
	var delays uint64
	for _, n := range rep.delay[1] {
		delays += n
	}
	if delays == 0 {
		t.Fatal("no one-way delay measured in the first half")
	}
	if !strings.Contains(out.String(), "time to first frame") {
		t.Fatalf("report lacks time to first frame:\n%s", out.String())
	}

	// Joins alone: each viewer leaves at its first frame.
	o.leaveAfterFrame, o.viewers = true, 5
	rep, err = runBroadcastTest(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	rep.print(&out)
	t.Log(out.String())
	if rep.joinsOK != 5 || rep.noFrame != 0 || rep.ttffP95 <= 0 || !strings.Contains(out.String(), "left after their first frame") {
		t.Fatalf("joins only: %d joins, %d without a frame, TTFF p95 %v\n%s", rep.joinsOK, rep.noFrame, rep.ttffP95, out.String())
	}
}

func TestLoadBroadcastFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"loadtest", "broadcast", "--help"}, exitOK, "--viewers"},
		{[]string{"loadtest", "broadcast", "--class", "c"}, exitUsage, "--token"},
		{[]string{"loadtest", "broadcast", "--publish=false"}, exitUsage, "--publish=false needs --class"},
		{[]string{"loadtest", "broadcast", "--join-rate", "0"}, exitUsage, "--join-rate"},
		{[]string{"loadtest", "broadcast", "--server-pid", "x"}, exitUsage, "--server-pid"},
		{[]string{"loadtest", "broadcast"}, exitUsage, "password"},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), Env{Args: tc.args, Stdout: &stdout, Stderr: &stderr})
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q; want exit %d and %q", tc.args, code, stdout.String()+stderr.String(), tc.code, tc.want)
		}
	}
}
