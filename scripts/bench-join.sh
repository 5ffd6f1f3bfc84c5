#!/usr/bin/env bash
# Measures the join path (sign-in, generateLiveClassToken, listLiveClasses)
# against a freshly started server, with SQLite and with PostgreSQL, and the
# /healthz floor run the same way. The server runs on CPU 0, the load
# generator on CPU 1, so that neither steals the other's core.
#
#   scripts/bench-join.sh [sqlite|postgres|postgres-unix|all]   (default all)
#
# postgres connects over TCP to 127.0.0.1, as a server on another machine
# would be reached; postgres-unix reaches the same kind of server through
# its Unix socket, the usual way when both run on one machine. all runs
# sqlite, postgres and postgres-unix.
#
# Environment: USERS (50), CONCURRENCY (16), DURATION (20s), LOG_LEVEL (warn),
# SERVER_CPU (0) and TESTER_CPU (1) for taskset, BIN (a liveclass binary to
# measure instead of building bin/liveclass).
set -euo pipefail
cd "$(dirname "$0")/.."

which=${1:-all}
USERS=${USERS:-50}
CONCURRENCY=${CONCURRENCY:-16}
DURATION=${DURATION:-20s}
LOG_LEVEL=${LOG_LEVEL:-warn}
SERVER_CPU=${SERVER_CPU:-0}
pgbin=
TESTER_CPU=${TESTER_CPU:-1}

if [ -n "${BIN:-}" ]; then
	bin=$(realpath "$BIN") # another build, e.g. an older commit's, to compare
else
	make -s build
	bin=$PWD/bin/liveclass
fi
work=$(mktemp -d /tmp/liveclass-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	for d in "$work"/pg-*; do
		if [ -f "$d/postmaster.pid" ]; then
			runuser -u postgres -- "$pgbin/pg_ctl" -D "$d" -m fast stop >/dev/null 2>&1 || true
		fi
	done
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ready() {
	for _ in $(seq 600); do
		curl -sf "$1/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "server at $1 did not become ready" >&2
	return 1
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

bench() { # name database_url [database pid]
	local name=$1 db=$2 dbpid=${3:-} port url pids_arg
	port=$(free_port)
	url=http://127.0.0.1:$port
	echo
	echo "== $name =="
	LIVECLASS_ADMIN_PASSWORD=bench-admin-password taskset -c "$SERVER_CPU" "$bin" serve \
		--listen "127.0.0.1:$port" --data-dir "$work/data-$name" --database-url "$db" \
		--signin-rate-limit 0 --log-level "$LOG_LEVEL" >"$work/$name.out" 2>"$work/$name.log" &
	pids+=($!)
	pids_arg=$!${dbpid:+,$dbpid}
	if ! wait_ready "$url"; then
		tail -20 "$work/$name.log" >&2
		return 1
	fi
	LIVECLASS_ADMIN_PASSWORD=bench-admin-password taskset -c "$TESTER_CPU" "$bin" loadtest join \
		--url "$url" --users "$USERS" --concurrency "$CONCURRENCY" --duration "$DURATION" --server-pid "$pids_arg"
	taskset -c "$TESTER_CPU" "$bin" loadtest healthz --url "$url" --concurrency "$CONCURRENCY" --duration "$DURATION" --server-pid "$pids_arg"
	kill "${pids[-1]}"
	wait "${pids[-1]}" || true
	unset 'pids[-1]'
}

if [ "$which" = sqlite ] || [ "$which" = all ]; then
	bench sqlite "sqlite:$work/data-sqlite/liveclass.db"
fi

pg() { # name: start a fresh PostgreSQL, bench against it, stop it
	local name=$1 pgdir=$work/pg-$1 pgport url
	pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
	pgport=$(free_port)
	mkdir -p "$pgdir"
	chown postgres "$pgdir"
	runuser -u postgres -- "$pgbin/initdb" -D "$pgdir" -U postgres -A trust >/dev/null
	# PostgreSQL shares the server's core: the database is part of what the
	# server costs, and the tester keeps its own core.
	runuser -u postgres -- taskset -c "$SERVER_CPU" "$pgbin/pg_ctl" -D "$pgdir" -l "$pgdir/server.log" \
		-o "-p $pgport -k $pgdir -c listen_addresses=127.0.0.1 -c max_connections=100" -w start >/dev/null
	url="postgres://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"
	if [ "$name" = postgres-unix ]; then
		url="postgres://postgres@/postgres?host=$pgdir&port=$pgport&sslmode=disable"
	fi
	bench "$name" "$url" "$(head -1 "$pgdir/postmaster.pid")"
	runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir" -m fast stop >/dev/null
}

if [ "$which" = postgres ] || [ "$which" = all ]; then
	pg postgres
fi
if [ "$which" = postgres-unix ] || [ "$which" = all ]; then
	pg postgres-unix
fi
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
