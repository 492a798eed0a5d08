#!/usr/bin/env bash
# The issue's reference, measured on this machine: @octokit/webhooks'
# Node middleware (verify the signature, parse, dispatch, keep nothing)
# under the same wrk load as scripts/loadtest.sh, so that monohook's
# figures can be compared with it run for run on the same machine.
#
#   scripts/octokit-reference.sh [payload.json ...]   (default: testdata/bench/push-8k.json and push-200k.json)
#
# Needs node, npm (the package is installed into a temporary directory),
# wrk and openssl. Bounded: 10 s per payload, loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/wrk-pushes.sh
for c in node npm wrk openssl; do
  command -v "$c" >/dev/null || { echo "$c is not installed" >&2; exit 1; }
done

payloads=("$@")
[ ${#payloads[@]} -gt 0 ] || payloads=(testdata/bench/push-8k.json testdata/bench/push-200k.json)
duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
version=${OCTOKIT_VERSION:-14.2.0}

work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund "@octokit/webhooks@$version" >/dev/null)
secret=load-test-secret
port=$((20000 + RANDOM % 20000))
cat >"$work/server.mjs" <<'JS'
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";
import http from "node:http";
const webhooks = new Webhooks({ secret: process.env.SECRET });
webhooks.on("push", () => {});
http.createServer(createNodeMiddleware(webhooks, { path: "/webhook" })).listen(Number(process.env.PORT), "127.0.0.1");
JS
SECRET=$secret PORT=$port node "$work/server.mjs" &
pid=$!
for _ in $(seq 100); do
  (: >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

wrk_pushes "http://127.0.0.1:$port" "$secret" "@octokit/webhooks $version: " "${payloads[@]}"
