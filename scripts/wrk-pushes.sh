# Sourced by scripts/loadtest.sh and scripts/octokit-reference.sh, so that
# both drive their server with exactly the same load.
#
# wrk_pushes URL SECRET LABEL PAYLOAD...: for each payload, wrk at
# $connections connections for $duration, each request a signed push with
# a fresh X-GitHub-Delivery (scripts/webhook.lua).
wrk_pushes() {
  local url=$1 secret=$2 label=$3 p sig
  shift 3
  for p in "$@"; do
    sig="sha256=$(openssl dgst -sha256 -hmac "$secret" -r "$p" | cut -d' ' -f1)"
    echo "== $label$(basename "$p") ($(stat -c %s "$p") bytes), wrk -t2 -c$connections -d$duration"
    PAYLOAD="$p" SIG256="$sig" RUN_ID="run-$(date +%s%N)" wrk -t2 -c"$connections" -d"$duration" --latency \
      -s scripts/webhook.lua "$url"
  done
}
