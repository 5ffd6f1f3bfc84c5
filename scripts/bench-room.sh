#!/usr/bin/env bash
# Measures live classes on the media server: a freshly started server on
# CPU 0, `liveclass loadtest room` on CPU 1, each in a cgroup of its own
# with the largest CPU share and at autogroup nice -19, so that the rest of
# the machine (other test suites, a browser) does not take their cores.
# Needs root (cgroup v1 at /sys/fs/cgroup/cpu).
#
#   scripts/bench-room.sh [runs]        (default 1)
#
# Environment: PARTICIPANTS (50), CAMERAS (16), MICS (50), SPEAKERS (2),
# SCREENS (1), TILES (16), JOIN_RATE (10), SETTLE (5s), DURATION (40s),
# CLASSES (1), QUOTA (CPU quota of the server in µs per 100 ms; unset: none,
# 50000: half a core), SERVER_CPU (0), TESTER_CPU (1), BIN (a liveclass
# binary to measure instead of building bin/liveclass; BIN2 a second one,
# measured alternately with it, run for run), PERF (a file name prefix:
# record a 10 s perf profile of the server, PERF_DELAY (15) seconds in).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-1}
SERVER_CPU=${SERVER_CPU:-0}
TESTER_CPU=${TESTER_CPU:-1}
if [ -n "${BIN:-}" ]; then
	bins=("$(realpath "$BIN")")
else
	make -s build
	bins=("$PWD/bin/liveclass")
fi
if [ -n "${BIN2:-}" ]; then
	bins+=("$(realpath "$BIN2")")
fi

cg=/sys/fs/cgroup/cpu
if [ ! -w "$cg" ]; then
	echo "bench-room: needs root and cgroup v1 at $cg" >&2
	exit 1
fi
mkdir -p "$cg/lc-server" "$cg/lc-tester"
echo 262144 >"$cg/lc-server/cpu.shares"
echo 262144 >"$cg/lc-tester/cpu.shares"
echo "${QUOTA:--1}" >"$cg/lc-server/cpu.cfs_quota_us"

work=$(mktemp -d /tmp/liveclass-room.XXXXXX)
server=
cleanup() {
	if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
	echo -1 >"$cg/lc-server/cpu.cfs_quota_us" || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$runs"); do
	for bin in "${bins[@]}"; do
		rm -rf "$work/data"
		head -c 18 /dev/urandom | base64 >"$work/admin-password"
		port=$(free_port)
		# The server in its cgroup, pinned, at nice -19 (its autogroup).
		(
			echo $BASHPID >"$cg/lc-server/cgroup.procs"
			echo -19 >/proc/$BASHPID/autogroup
			LIVECLASS_ADMIN_PASSWORD=$(cat "$work/admin-password") exec taskset -c "$SERVER_CPU" "$bin" serve \
				--listen "127.0.0.1:$port" --data-dir "$work/data" --log-level warn \
				--rtc-udp-port 0 --rtc-tcp-port 0 --signin-rate-limit 0
		) >"$work/server.log" 2>&1 &
		server=$!
		for _ in $(seq 300); do
			curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
			sleep 0.1
		done
		echo "== run $run, $bin"
		if [ -n "${PERF:-}" ]; then
			# A profile of the server, 10 s in the middle of the window.
			(sleep "${PERF_DELAY:-15}"; perf record -F 499 -g -p "$server" -o "$PERF.$run.$(basename "$bin")" -- sleep 10 >/dev/null 2>&1) &
		fi
		(
			echo $BASHPID >"$cg/lc-tester/cgroup.procs"
			echo -19 >/proc/$BASHPID/autogroup
			exec taskset -c "$TESTER_CPU" "$bin" loadtest room --url "http://127.0.0.1:$port" \
				--admin-password-file "$work/admin-password" --classes "${CLASSES:-1}" \
				--participants "${PARTICIPANTS:-50}" --cameras "${CAMERAS:-16}" --mics "${MICS:-50}" \
				--speakers "${SPEAKERS:-2}" --screens "${SCREENS:-1}" --tiles "${TILES:-16}" \
				--join-rate "${JOIN_RATE:-10}" --settle "${SETTLE:-5s}" --duration "${DURATION:-40s}" \
				--server-pid "$server"
		)
		kill "$server"
		wait "$server" 2>/dev/null || true
		server=
	done
done
