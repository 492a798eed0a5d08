#!/usr/bin/env bash
# Ingest load test: `monohook serve` on loopback, signed pushes from wrk at
# 32 connections, a fresh delivery id per request. Prints wrk's summary and
# latency percentiles for each payload.
#
#   scripts/loadtest.sh [payload.json ...]   (default: testdata/bench/push-8k.json and push-200k.json)
#
# SERVE_ARGS adds serve flags (e.g. --database postgres://…); MONOHOOK_BIN
# runs a binary built before instead of building this tree; SERVE_LOG
# keeps the server's log in that file; IDS=uuid sends random GUIDs as
# delivery ids, IDS=uuid1 time-based ones, the kind GitHub's examples
# show (default: ids nearly in order).
# DASHBOARD_EVERY=0.1 turns the dashboard on and fetches its list page
# every 0.1 s during the load, as someone watching it would; the script
# then prints how many pages were fetched and the slowest. DRAIN=300
# waits up to 300 s after the load for every push to be evaluated and
# prints how long that took and how often the rules were listed.
# PUSH_TO_START="50 300" measures push to StartPipelineExecution instead,
# at each of those pushes per second (scripts/pushstart; no wrk needed).
# Needs wrk (apt-get install wrk) and openssl. Bounded: 10 s per payload,
# loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wrk-pushes.sh
[ -n "${PUSH_TO_START:-}" ] || command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

payloads=("$@")
[ ${#payloads[@]} -gt 0 ] || payloads=(testdata/bench/push-8k.json testdata/bench/push-200k.json)
duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}

work=$(mktemp -d)
trap 'kill "$pid" ${poller:-} 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
# MONOHOOK_BIN: a binary built before (to compare two versions run for run).
if [ -n "${MONOHOOK_BIN:-}" ]; then cp "$MONOHOOK_BIN" "$work/monohook"; else go build -o "$work/monohook" ./cmd/monohook; fi
secret=load-test-secret
log=${SERVE_LOG:-$work/serve.log} # SERVE_LOG: keep the server's log
port=$((20000 + RANDOM % 20000))

# A realistic rule set for the pushes' repository: 200 rules.
for i in $(seq 0 199); do
  "$work/monohook" rules put --data-dir "$work/data" --repo monorepo --branch main \
    --pipeline "pipeline-svc$i" --match "services/svc$i/.*,deploy/svc$i/.*" >/dev/null
done

if [ -n "${PUSH_TO_START:-}" ]; then
  # Push to start: for each rate, a fresh serve (not a dry run) whose
  # CodePipeline is scripts/pushstart, which sends pushes at that rate for
  # $duration, each selecting one pipeline, and records when each start
  # arrives.
  go build -o "$work/pushstart" ./scripts/pushstart
  for rate in $PUSH_TO_START; do
    cp -r "$work/data" "$work/data-$rate"
    fport=$((20000 + RANDOM % 20000))
    "$work/pushstart" -listen "127.0.0.1:$fport" -target "http://127.0.0.1:$port" -secret "$secret" \
      -rate "$rate" -for "$duration" &
    tool=$!
    AWS_ENDPOINT_URL_CODEPIPELINE="http://127.0.0.1:$fport" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
      AWS_REGION=us-east-1 AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_EC2_METADATA_DISABLED=true \
      "$work/monohook" serve --listen "127.0.0.1:$port" --data-dir "$work/data-$rate" --secret "$secret" \
      ${SERVE_ARGS:-} --log-level "${LOG_LEVEL:-info}" 2>"$log" &
    pid=$!
    wait "$tool" || echo "pushstart failed (serve log: $log)" >&2
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "   serve log: $(grep -c 'level=WARN' "$log") warnings, $(grep -c 'level=ERROR' "$log") errors"
    grep -m 3 -E 'level=(WARN|ERROR)' "$log" | cut -c1-400 || true
  done
  exit 0
fi

admin_token=
[ -z "${DASHBOARD_EVERY:-}" ] || admin_token=load-test-dashboard-token
MONOHOOK_ADMIN_TOKEN=$admin_token "$work/monohook" serve --dry-run --listen "127.0.0.1:$port" --data-dir "$work/data" \
  --secret "$secret" ${SERVE_ARGS:-} --log-level "${LOG_LEVEL:-info}" 2>"$log" &
pid=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

poller=
if [ -n "$admin_token" ]; then
  curl -fsS -c "$work/cookies" -H "Origin: http://127.0.0.1:$port" \
    -d "token=$admin_token&next=/" "http://127.0.0.1:$port/login" -o /dev/null
  (while :; do
    curl -fsS -b "$work/cookies" -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/" >>"$work/pages" || true
    sleep "$DASHBOARD_EVERY"
  done) &
  poller=$!
fi
wrk_pushes "http://127.0.0.1:$port" "$secret" "" "${payloads[@]}"
if [ -n "${DRAIN:-}" ]; then
  # How long evaluation takes to catch up once the load stops: a burst is
  # acknowledged first and evaluated behind it.
  began=$(date +%s.%N)
  for _ in $(seq $((DRAIN * 10))); do
    waiting=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '$1=="monohook_deliveries_waiting"{print $2}')
    [ "$waiting" = 0 ] && break
    sleep 0.1
  done
  echo "== evaluation caught up $(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s after the load (deliveries still waiting: $waiting); rule store listed $(curl -fsS "http://127.0.0.1:$port/metrics" | awk '$1=="monohook_rules_lists_total"{print $2}') times"
fi
if [ -n "$poller" ]; then
  kill "$poller"
  echo "== dashboard: $(wc -l <"$work/pages") list pages fetched, the slowest in $(sort -n "$work/pages" | tail -1) s"
fi
echo "== serve log: $(grep -c "push accepted" "$log") accepted, $(grep -c "push evaluated" "$log") evaluated, $(grep -c 'level=WARN' "$log") warnings, $(grep -c 'level=ERROR' "$log") errors"
grep -m 3 -E 'level=(WARN|ERROR)' "$log" | cut -c1-400 || true
# The server's own time per acknowledged push (from reading the request to
# answering it), all payloads together, from the "push accepted" lines.
grep 'msg="push accepted"' "$log" | sed -n 's/.* took=\([0-9.]*\)\([µmn]*s\).*/\1 \2/p' |
  awk '{v=$1; if ($2=="ms") v*=1000; else if ($2=="s") v*=1e6; else if ($2=="ns") v/=1000; print v}' | sort -n |
  awk '{a[NR]=$1} END {if (NR) printf "== server time to acknowledge (µs): p50 %.0f, p99 %.0f, p99.9 %.0f, max %.0f over %d pushes\n", a[int(NR*0.5)], a[int(NR*0.99)], a[int(NR*0.999)], a[NR], NR}'
