#!/usr/bin/env bash
# The README's performance figures, all in one run on this machine, printed as a table at the end:
# the embedded system's start and memory, the gateway's hop beside a bare axum handler and nginx
# (in-process calls and HTTP), the booking rush closed loop and open loop at half that rate, and
# how long an event's effect takes to show; then the same rush and effects in the distributed
# mode (deploy/run-distributed.sh on PostgreSQL, RabbitMQ and Redis, which must be running).
# Everything runs on 127.0.0.1; the distributed run's database and queues are dropped after.
# Usage: deploy/measure.sh [LOG]   (MARQUEE_BIN to use another build; MEASURE_DISTRIBUTED=0 to skip)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${MARQUEE_BIN:-target/release/marquee}"
[ -x "$BIN" ] || cargo build --release -p marquee
LOG="${1:-target/measure-$(date +%Y%m%d-%H%M%S).log}"
mkdir -p "$(dirname "$LOG")"
PORT="${MEASURE_PORT:-18080}"
URL="http://127.0.0.1:$PORT"
export MARQUEE_ADMIN_EMAIL=admin@marquee.local MARQUEE_ADMIN_PASSWORD=measure-admin-password-1
export MARQUEE_RATE_LIMIT_EXEMPT=127.0.0.1
WORK="$(mktemp -d)"
PIDS=()
DIST_DB="measure_$$"
cleanup() {
  for p in "${PIDS[@]}"; do kill -- "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

row() { printf '| %s | %s |\n' "$1" "$2" >> "$WORK/table"; }
log() { tee -a "$LOG"; }
wait_health() {
  for _ in $(seq 1 600); do curl -sf "$URL/health" >/dev/null && return 0; sleep 0.05; done
  echo "no answer from $URL/health" >&2; return 1
}
rss_mb() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
# The embedded system, on $WORK/data, with extra settings in "$@".
start_up() {
  env "$@" MARQUEE_DATA_DIR="$WORK/data" "$BIN" up --port "$PORT" > "$WORK/up.log" 2>&1 &
  UP=$!
  PIDS+=("$UP")
  wait_health
}
stop_up() { kill "$UP"; wait "$UP" 2>/dev/null || true; }
ready_ms() { grep -o 'ready in [0-9]* ms' "$WORK/up.log" | tail -n1 | grep -o '[0-9]*'; }
loadtest() { "$BIN" loadtest --url "$URL" "$@" 2>&1 | log; }
# "rush: N bookings confirmed in T s (R/s)" -> R
rush_rate() { grep -o 'confirmed in [0-9.]* s ([0-9]*/s)' | tail -n1 | grep -o '([0-9]*' | tr -d '('; }
# a request kind's "p50 / p99" from loadtest's table
p50_p99() { awk -v k="$1" 'index($0, k) == 1 { n = split(substr($0, length(k) + 1), f, " "); print f[3] " / " f[4] }' | tail -n1; }
effect_p() { grep -o 'p50 [0-9.]*[mµ]*s, p99 [0-9.]*[mµ]*s' | tail -n1; }

rush_pair() { # label: closed loop, then open loop at half its rate, then effects
  local label="$1" out
  # A failed oversell or ledger check fails loadtest, and so this script (set -e, pipefail).
  out="$(loadtest --scenario rush --concurrency 32 --duration 10)"
  local rate; rate="$(echo "$out" | rush_rate)"
  row "$label rush, closed loop (32 buyers, 10 s): confirmed/s; hold p50 / p99; pay p50 / p99" \
    "$rate/s ($(awk -v r="$rate" 'BEGIN { printf "%.2f", r / 1000 }') of 1,000/s); $(echo "$out" | p50_p99 'hold '); $(echo "$out" | p50_p99 'pay '); oversell and ledger checks passed"
  local half=$(( rate / 2 ))
  out="$(loadtest --scenario rush --concurrency 64 --duration 10 --rate "$half")"
  row "$label rush, open loop at half that ($half/s offered, some holds finding a seat taken): confirmed/s; hold p99; pay p99 (goal < 50 ms)" \
    "$(echo "$out" | rush_rate)/s; $(echo "$out" | p50_p99 'hold ' | cut -d/ -f2 | tr -d ' '); $(echo "$out" | p50_p99 'pay ' | cut -d/ -f2 | tr -d ' ')"
  out="$(loadtest --scenario effects --concurrency 4 --duration 5)"
  row "$label: booking.confirmed -> loyalty points visible, 4 buyers" "$(echo "$out" | effect_p)"
}

echo "measuring with $BIN, log in $LOG" | log
cores="$(nproc)"
echo "| what | figure |" > "$WORK/table"
echo "|---|---|" >> "$WORK/table"

echo "== embedded: first start, then a start on the existing data dir" | log
start_up
row "embedded, first start (migrations, keys, demo data) -> /health 200" "$(ready_ms) ms"
sleep 15 # what a first start does after it is ready (demo clips packaged) ends
stop_up
start_up
sleep 10
row "embedded, start on the existing data dir -> /health 200; idle RSS 10 s later" "$(ready_ms) ms (target < 2,000 ms); $(rss_mb "$UP") MB (target < 80 MB)"

echo "== overhead, in-process calls" | log
out="$(loadtest --scenario overhead --concurrency 32 --duration 8 --admin-email "$MARQUEE_ADMIN_EMAIL" --admin-password "$MARQUEE_ADMIN_PASSWORD")"
share() { echo "$out" | grep -o 'bare axum handler: catalog [0-9.]*, gateway [0-9.]*' | tail -n1 | grep -o "$1 [0-9.]*" | awk '{print $NF}'; }
row "GET /api/v1/movies/{id}, embedded (in-process calls): gateway / bare axum handler; catalog / bare" \
  "$(share 'gateway'); $(share 'catalog') (target gateway >= 0.5)"
row "the same: gateway / nginx in front of the same catalog" "$(echo "$out" | grep -o "share of nginx's, in front of the same catalog: [0-9.]*" | awk '{print $NF}')"
stop_up

echo "== overhead, HTTP calls (as in the distributed mode)" | log
start_up MARQUEE_IN_PROCESS_CALLS=false
out="$(loadtest --scenario overhead --concurrency 32 --duration 8 --admin-email "$MARQUEE_ADMIN_EMAIL" --admin-password "$MARQUEE_ADMIN_PASSWORD")"
row "the same over loopback HTTP: gateway / nginx (target >= 1.0); gateway / bare" \
  "$(echo "$out" | grep -o "share of nginx's, in front of the same catalog: [0-9.]*" | awk '{print $NF}'); $(share 'gateway')"
stop_up

echo "== embedded rush" | log
start_up
( peak=0; while kill -0 "$UP" 2>/dev/null; do r="$(rss_mb "$UP" 2>/dev/null || echo 0)"; [ "${r:-0}" -gt "$peak" ] && peak="$r" && echo "$peak" > "$WORK/peak"; sleep 0.5; done ) &
rush_pair "embedded (SQLite)"
row "embedded, peak RSS during the rushes" "$(cat "$WORK/peak") MB (target < 250 MB)"
stop_up

if [ "${MEASURE_DISTRIBUTED:-1}" != 0 ]; then
  echo "== distributed (deploy/run-distributed.sh, database $DIST_DB)" | log
  MARQUEE_BIN="$BIN" MARQUEE_STATE_DIR="$WORK/distributed" MARQUEE_LOG=warn \
    setsid deploy/run-distributed.sh "$DIST_DB" "$PORT" > "$WORK/dist.log" 2>&1 &
  DIST=$!
  PIDS+=("-$DIST")
  wait_health
  sleep 2
  rush_pair "distributed (PostgreSQL, RabbitMQ, Redis; two booking replicas)"
  kill -- "-$DIST" 2>/dev/null || true
  wait "$DIST" 2>/dev/null || true
  psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS $DIST_DB" || true
  for q in $(rabbitmqctl -q list_queues name 2>/dev/null | grep "^$DIST_DB\." || true); do
    rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true
  done
fi

{ echo; echo "Measured $(date -u +%Y-%m-%d) with deploy/measure.sh on $cores cores, release build, one run:"; echo; cat "$WORK/table"; } | log
