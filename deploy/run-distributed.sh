#!/usr/bin/env bash
# The distributed mode on one machine: one `marquee serve` process per service (two booking
# replicas), on PostgreSQL (a schema per service in one database), RabbitMQ and Redis, behind two
# gateways (GATEWAY_PORT and the next port) that share their rate limits through Redis.
# Streaming keeps its media in target/distributed/DATABASE/streaming (MARQUEE_STATE_DIR to move it),
# notifications its emails in .../notifications/mail (.eml files, unless MARQUEE_SMTP_URL is set),
# backup its backups in .../backup/objects/backups (unless MARQUEE_BACKUP_STORE is set).
# Usage: deploy/run-distributed.sh [DATABASE] [GATEWAY_PORT]   (Ctrl-C stops everything)
set -euo pipefail
cd "$(dirname "$0")/.."
DB="${1:-marquee}"
PORT="${2:-8080}"
BIN="${MARQUEE_BIN:-target/release/marquee}"
STATE="${MARQUEE_STATE_DIR:-target/distributed/$DB}"
mkdir -p "$STATE/streaming" "$STATE/notifications" "$STATE/backup"
[ -x "$BIN" ] || cargo build --release -p marquee
PG="${MARQUEE_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
psql "$PG" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 || psql "$PG" -c "CREATE DATABASE $DB" >/dev/null

export MARQUEE_DATABASE_URL="${PG%/*}/$DB"
export MARQUEE_AMQP_URL="${MARQUEE_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export MARQUEE_AMQP_NAMESPACE="${MARQUEE_AMQP_NAMESPACE:-$DB}"
export MARQUEE_REDIS_URL="${MARQUEE_REDIS_URL:-redis://127.0.0.1:6379}"
export MARQUEE_REDIS_NAMESPACE="${MARQUEE_REDIS_NAMESPACE:-$DB}"
# The service secret goes to identity alone; every other service gets its own credential.
SECRET="${MARQUEE_SERVICE_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
unset MARQUEE_SERVICE_SECRET
export MARQUEE_ADMIN_EMAIL="${MARQUEE_ADMIN_EMAIL:-admin@marquee.local}"
export MARQUEE_ADMIN_PASSWORD="${MARQUEE_ADMIN_PASSWORD:-change-me-now}"
export MARQUEE_DEMO="${MARQUEE_DEMO:-1}"
export MARQUEE_LOG="${MARQUEE_LOG:-warn}"
export MARQUEE_IDENTITY_URL=http://127.0.0.1:9081
export MARQUEE_CATALOG_URL=http://127.0.0.1:9082
export MARQUEE_SHOWTIMES_URL=http://127.0.0.1:9083
export MARQUEE_BOOKING_URL=http://127.0.0.1:9084,http://127.0.0.1:9184
export MARQUEE_PAYMENTS_URL=http://127.0.0.1:9085
export MARQUEE_STREAMING_URL=http://127.0.0.1:9086
export MARQUEE_REVIEWS_URL=http://127.0.0.1:9087
export MARQUEE_LOYALTY_URL=http://127.0.0.1:9088
export MARQUEE_NOTIFICATIONS_URL=http://127.0.0.1:9089
export MARQUEE_ANALYTICS_URL=http://127.0.0.1:9090
export MARQUEE_RECOMMENDATIONS_URL=http://127.0.0.1:9091
export MARQUEE_BACKUP_URL=http://127.0.0.1:9092

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
serve() { # service port
  case "$1" in
    identity) MARQUEE_SERVICE_SECRET="$SECRET" "$BIN" serve "$1" --port "$2" --bind 127.0.0.1 & ;;
    gateway) "$BIN" serve "$1" --port "$2" --bind 127.0.0.1 & ;;
    *) MARQUEE_SERVICE_CREDENTIAL="$(MARQUEE_SERVICE_SECRET="$SECRET" "$BIN" keys service-credential "$1")" \
         "$BIN" serve "$1" --port "$2" --bind 127.0.0.1 & ;;
  esac
  pids+=($!)
}
serve identity 9081
sleep 1   # the others verify tokens against identity's keys
serve catalog 9082
serve payments 9085
serve showtimes 9083
serve booking 9084
serve booking 9184
MARQUEE_DATA_DIR="$STATE/streaming" serve streaming 9086   # its objects/ and uploads/
serve reviews 9087
serve loyalty 9088
MARQUEE_DATA_DIR="$STATE/notifications" serve notifications 9089   # its mail/
serve analytics 9090
serve recommendations 9091
MARQUEE_DATA_DIR="$STATE/backup" serve backup 9092   # backups in $STATE/backup/objects/backups
serve gateway "$PORT"
serve gateway "$((PORT + 1))"
echo "Marquee (distributed) on http://127.0.0.1:$PORT and :$((PORT + 1)); database $DB, namespace $MARQUEE_AMQP_NAMESPACE"
echo "Emails are written to $STATE/notifications/mail as .eml files unless MARQUEE_SMTP_URL is set"
wait
