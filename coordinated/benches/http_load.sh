#!/usr/bin/env bash
# End-to-end HTTP load: wrk against a release `coordinated` over PostgreSQL,
# server cache on vs off, 8 connections, the read mix of read_mix.lua.
# Reports requests/s, p50/p99 latency and PostgreSQL statements per request
# (pg_stat_statements). Benchmark only: never run by CI.
#
#   cargo build --release -p coordinated
#   bash coordinated/benches/http_load.sh   # DURATION=15s WARMUP=5s ROUNDS=1 SPECS=4 UNITS=2500
#
# CLIENT=coordbench runs coordbench's read mix instead of wrk (the worker's
# view: Cache<RestBackend> vs uncached; build it with
# `cargo build --release --features rest --example coordbench`). Each run
# first looks up every unit (`--touch`), so the cached client is measured in
# a long-running worker's steady state, its working set cached.
# With CPU=1 as well, it runs each configuration alone instead and reports
# the CPU time server, client and PostgreSQL spend per request.
#
# Each round runs cache on, then off, on the same data; on a busy machine
# compare the rounds' ratios rather than single figures.
#
# Starts its own throwaway PostgreSQL 15 cluster (unix socket only, as the
# `postgres` user when run as root) and removes it at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-1}
WARMUP=${WARMUP:-5s}
export SPECS=${SPECS:-4} UNITS=${UNITS:-2500}
PORT=${PORT:-5981}
BIN=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
SERVER=target/release/coordinated
SCRIPT=coordinated/benches/read_mix.lua
CLIENT=${CLIENT:-wrk}
[ -x "$SERVER" ] || { echo "build first: cargo build --release -p coordinated" >&2; exit 1; }
if [ "$CLIENT" = coordbench ]; then
  [ -x target/release/examples/coordbench ] ||
    { echo "build first: cargo build --release --features rest --example coordbench" >&2; exit 1; }
else
  command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
fi

DIR=$(mktemp -d /tmp/http-load.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

as_pg "$BIN/initdb" -D "$DIR/data" -A trust -U postgres >/dev/null
as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -o "-k $DIR -c listen_addresses='' \
  -c shared_preload_libraries=pg_stat_statements -c synchronous_commit=off \
  -c max_connections=100" start >/dev/null
sql() { psql -h "$DIR" -U postgres -d "${2:-bench}" -qAtc "$1"; }
sql "CREATE DATABASE bench" postgres
sql "CREATE EXTENSION pg_stat_statements"
BACKEND="postgres:host=$DIR user=postgres dbname=bench"

start_server() {
  # Another process answering on the port would be measured instead.
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
    echo "port $PORT is already in use (set PORT)" >&2; exit 1
  fi
  "$SERVER" --http "127.0.0.1:$PORT" --backend "$BACKEND" --cache "$1" >"$DIR/server-$1.out" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { cat "$DIR/server-$1.out" >&2; echo "coordinated exited" >&2; exit 1; }
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return
    sleep 0.1
  done
  echo "coordinated did not start" >&2; exit 1
}

seed() {
  python3 - "$PORT" <<'PY'
import http.client, json, os, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
hdr = {"Content-Type": "application/json"}
def post(path, body):
    conn.request("POST", path, json.dumps(body), hdr)
    r = conn.getresponse(); r.read()
    assert r.status == 201, (path, r.status)
for s in range(int(os.environ["SPECS"])):
    post("/namespace/bench/work_spec", {"data": {"name": f"s{s}"}})
    for u in range(int(os.environ["UNITS"])):
        post(f"/namespace/bench/work_spec/s{s}/work_unit",
             {"name": f"u{u:05d}", "data": {"url": f"https://example.com/{s}/{u}"}})
PY
}

run() { # mode
  start_server "$1"
  wrk -t2 -c8 -d"$WARMUP" -s "$SCRIPT" "http://127.0.0.1:$PORT" >/dev/null
  sql "SELECT pg_stat_statements_reset()" >/dev/null
  local out
  out=$(wrk -t2 -c8 -d"$DURATION" -s "$SCRIPT" "http://127.0.0.1:$PORT" | grep '^RESULT')
  local statements
  statements=$(sql "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%'")
  local requests=${out#*requests=}; requests=${requests%% *}
  echo "cache=$1 ${out#RESULT } statements=$statements statements_per_request=$(python3 -c "print(round($statements / $requests, 3))")"
  if [ -n "${BREAKDOWN:-}" ]; then # the statements behind the figure, per request
    sql "SELECT round(calls::numeric / $requests, 3) || '  ' || left(regexp_replace(query, '\s+', ' ', 'g'), 110)
         FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%' ORDER BY calls DESC LIMIT 12"
  fi
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
}

# CPU seconds (user + system) the given processes have used so far.
cpu_seconds() {
  local ticks=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  python3 -c "print($ticks / $(getconf CLK_TCK))"
}

# CPU time per read request of server, client and PostgreSQL, for each
# client configuration run alone: sampled over 8 s in the middle of a 20 s run.
cpu_per_request() {
  local only cb out rps s1 c1 p1 s2 c2 p2
  for only in cached uncached; do
    out="$DIR/coordbench-$only.out"
    target/release/examples/coordbench --backend "http://127.0.0.1:$PORT" --mix reads --touch \
      --rounds 1 --only "$only" --duration 20 --specs "$SPECS" --units $((SPECS * UNITS)) >"$out" 2>&1 &
    cb=$!
    sleep 12 # past the look-ups and the warm-up
    s1=$(cpu_seconds "${PIDS[0]}"); c1=$(cpu_seconds "$cb"); p1=$(cpu_seconds $(pgrep -u "$(stat -c %U "$DIR/data")" postgres))
    sleep 8
    s2=$(cpu_seconds "${PIDS[0]}"); c2=$(cpu_seconds "$cb"); p2=$(cpu_seconds $(pgrep -u "$(stat -c %U "$DIR/data")" postgres))
    wait "$cb"
    rps=$(awk '/^requests\/s/ {print ($2 == "-") ? $3 : $2}' "$out")
    python3 -c "
n = $rps * 8
s, c, p = ($s2 - $s1) / n * 1e6, ($c2 - $c1) / n * 1e6, ($p2 - $p1) / n * 1e6
print(f'$only: {$rps:.0f} requests/s; CPU per request: server {s:.0f} µs, client {c:.0f} µs, '
      f'PostgreSQL {p:.0f} µs, total {s + c + p:.0f} µs')"
  done
}

if [ "$CLIENT" = coordbench ]; then
  # The worker side: coordbench's read mix through RestBackend, with and
  # without Cache<RestBackend>, against a server whose own cache is on.
  start_server on
  echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ -n "${CPU:-}" ]; then cpu_per_request; exit; fi
  target/release/examples/coordbench --backend "http://127.0.0.1:$PORT" --mix reads --touch \
    --rounds "$ROUNDS" --specs "$SPECS" --units $((SPECS * UNITS))
  exit
fi
start_server on; seed; kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $SPECS specs x $UNITS units; wrk -t2 -c8 -d$DURATION after $WARMUP warm-up"
for round in $(seq "$ROUNDS"); do
  echo "round $round"
  run on
  run off
done
