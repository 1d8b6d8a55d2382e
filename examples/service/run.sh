#!/usr/bin/env bash
# Runs the service under load twice, with the cache (in process + Redis) and
# without it (CACHE=off), against the local PostgreSQL; writes per-second
# CSVs and a summary table to results/, and the chart if matplotlib is there.
#
#   examples/service/run.sh            # 20 s per run, 32 connections
#   SECONDS_PER_RUN=60 WORKERS=64 examples/service/run.sh
#
# Needs: PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`) or
# DATABASE_URL, and `redis-server` on the PATH (started here on a free
# loopback port, stopped at the end). Everything stays on loopback.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
cargo build --release -p cachewright-service-example --manifest-path "$root/Cargo.toml"
bin="$root/target/release"
mkdir -p results
secs=${SECONDS_PER_RUN:-20}
workers=${WORKERS:-32}
rows=${ROWS:-10000}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
redis_pid=$!
svc_pid=
cleanup() { [ -n "$svc_pid" ] && kill "$svc_pid" 2>/dev/null || true; kill "$redis_pid" 2>/dev/null || true; }
trap cleanup EXIT

run() { # label, CACHE
  local label=$1 cache=$2 port
  port=$(free_port)
  redis-cli -p "$redis_port" flushall >/dev/null
  CACHE=$cache PORT=$port ROWS=$rows TABLE=cw_service_demo RUST_LOG=warn \
    CACHEWRIGHT_REDIS_URL="redis://127.0.0.1:$redis_port" "$bin/service" &
  svc_pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/stats" >/dev/null 2>&1 && break
    sleep 0.1
  done
  # Let PostgreSQL settle after the seed (a first run showed a one-off
  # stall of about 1.9 s in both modes in its second second otherwise).
  sleep 3
  URL="127.0.0.1:$port" DURATION="$secs" WORKERS="$workers" ROWS="$rows" \
    OUT="results/$label.csv" LABEL="$label" "$bin/load" >>results/summary.md
  kill "$svc_pid"; wait "$svc_pid" 2>/dev/null || true; svc_pid=
}

{
  echo "| run | requests/s | hit rate | database queries/s | p50 | p99 | errors |"
  echo "|---|---|---|---|---|---|---|"
} >results/summary.md
run cached on
run uncached off
cat results/summary.md
if python3 -c 'import matplotlib' 2>/dev/null; then
  python3 chart.py results/cached.csv results/uncached.csv results/chart.png
else
  echo "matplotlib not installed (pip install matplotlib): no chart drawn"
fi
