#!/usr/bin/env bash
# Builds the container image (make image) and checks it without a container
# runtime: the image's own binary, run from its mounted filesystem, prints
# its version and serves /healthz; its configuration says user 65532, volume
# /data. What runs only under a runtime (namespaces, the user and volume
# applied by it) is not checked here; see deploy/container/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

image=monohook:check
make image IMAGE="$image"
ctr=$(buildah from "$image")
mnt=$(buildah mount "$ctr")
data=$(mktemp -d)
log=$(mktemp)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  buildah umount "$ctr" >/dev/null || true
  buildah rm "$ctr" >/dev/null || true
  rm -rf "$data" "$log"
}
trap cleanup EXIT

echo "-- the image's files"
ls -ln "$mnt" "$mnt/monohook" "$mnt/etc/ssl/certs/ca-certificates.crt"
if file "$mnt/monohook" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "the image's binary is dynamically linked: it cannot run on an empty base" >&2; exit 1
fi

echo "-- its configuration"
config=$(buildah inspect --type image --format '{{.OCIv1.Config.User}} {{range $k, $v := .OCIv1.Config.Volumes}}{{$k}} {{end}}{{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}}' "$image")
echo "$config"
[ "$config" = "65532:65532 /data [/monohook] [serve]" ] || { echo "unexpected image configuration: $config" >&2; exit 1; }
owner=$(stat -c %u:%g "$mnt/data")
[ "$owner" = "65532:65532" ] || { echo "/data belongs to $owner, not the image's user" >&2; exit 1; }

echo "-- /monohook version"
"$mnt/monohook" version

echo "-- /monohook serve --dry-run, answering /healthz"
SSL_CERT_FILE="$mnt/etc/ssl/certs/ca-certificates.crt" "$mnt/monohook" serve --dry-run --listen 127.0.0.1:0 --data-dir "$data" 2>"$log" &
pid=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'webhook_url=[^ ]*' "$log" | head -n 1 | sed 's/webhook_url=//; s#/webhook$##') || true
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "serve did not start:"; cat "$log"; exit 1; } >&2
curl -fsS "$url/healthz"; echo
kill "$pid"; wait "$pid" || true; pid=

# buildah's chroot isolation runs a command in the image's own filesystem,
# as the image's user and with its environment, where the machine allows
# no container runtime (no cgroups, no user namespaces).
echo "-- inside the image (buildah run --isolation chroot)"
if ! buildah run --isolation chroot "$ctr" -- /monohook version; then
  echo "SKIPPED: buildah cannot run the image here, even in a chroot; only the binary above was run"
  exit 0
fi
: >"$log"
# /data is a volume, which buildah run replaces by a fresh one: the data
# directory goes in the image's /tmp instead, to be seen from here.
setsid buildah run --isolation chroot "$ctr" -- /monohook serve --dry-run --listen 127.0.0.1:0 --data-dir /tmp/data 2>"$log" &
group=$!
url=
for _ in $(seq 100); do
  url=$(grep -o 'webhook_url=[^ ]*' "$log" | head -n 1 | sed 's/webhook_url=//; s#/webhook$##') || true
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "serve did not start in the image:"; cat "$log"; kill -- -"$group"; exit 1; } >&2
curl -fsS "$url/healthz"; echo
kill -- -"$group"; wait "$group" || true
# serve made its secret as the image's user.
secret_owner=$(stat -c %u:%g "$mnt/tmp/data/webhook-secret")
[ "$secret_owner" = "65532:65532" ] || { echo "the secret belongs to $secret_owner: serve did not run as 65532" >&2; exit 1; }
echo "serve ran as 65532"
echo "image $image checked"
