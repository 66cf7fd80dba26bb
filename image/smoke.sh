#!/usr/bin/env bash
# Runs the image built by image/build.sh: the one-process server inside it (chroot isolation,
# as its user 65532, its data in the image's /data), then the client inside it too: health
# must answer SERVING, a call with the operator token the server wrote in /data must succeed,
# the public web port must answer, and a service alone's link must run that service. Exits non-zero otherwise, with the server's log.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/image
# The tag of the last image image/build.sh made.
tag="$(cat "$out/tag" 2>/dev/null || true)"
if [ -z "$tag" ]; then
    echo "smoke: no image: run image/build.sh first" >&2
    exit 1
fi
buildah=(buildah --root "$PWD/$out/storage" --runroot "$PWD/$out/run" --storage-driver vfs)
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port="$(free_port)"
web_port="$(free_port)"
server="http://127.0.0.1:$port"
log="$out/smoke-server.log"

container="$("${buildah[@]}" from --pull-never --name "symbiose-smoke-$$" "$tag")"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    "${buildah[@]}" rm "$container" >/dev/null 2>&1 || true
}
trap cleanup EXIT

inside() {
    "${buildah[@]}" run --isolation chroot --network host --user 65532:65532 \
        --env SYMBIOSE_SERVER="$server" "$container" -- "$@"
}

echo "smoke: the server in $tag on $server (as uid 65532, data in /data)"
"${buildah[@]}" run --isolation chroot --network host --user 65532:65532 \
    --env SYMBIOSE_LISTEN_ADDR="127.0.0.1:$port" --env SYMBIOSE_METRICS_ADDR=off \
    --env SYMBIOSE_WEB_ADDR="127.0.0.1:$web_port" \
    "$container" -- /usr/local/bin/symbiose >"$log" 2>&1 &
server_pid=$!

health=""
for _ in $(seq 1 120); do
    health="$(inside /usr/local/bin/symbiose health 2>/dev/null || true)"
    [ "$health" = "SERVING" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    sleep 0.5
done
if [ "$health" != "SERVING" ]; then
    echo "smoke: the server in the image never answered SERVING (last answer: '$health'); its log:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
echo "smoke: health inside the image: $health"

# An authenticated call: the client finds the operator token in /data, as the README says.
families="$(inside /usr/local/bin/symbiose families)"
if ! grep -q "^pallets " <<<"$families"; then
    echo "smoke: the authenticated call failed: $families" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
echo "smoke: an authenticated call inside the image (symbiose families): $(wc -l <<<"$families") families, first: $(head -n 1 <<<"$families" | cut -c1-60)"

# The public web port answers: an address naming no passport is a plain 404 page.
web="$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "http://127.0.0.1:$web_port/p/0190a0b2-5c1e-7000-8000-000000000000" || true)"
if [ "${web%% *}" != "404" ] || [[ "$web" != *text/html* ]]; then
    echo "smoke: the web port did not answer a 404 page: '$web'" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
echo "smoke: the web port inside the image answers an unknown passport with $web"

# Each service alone is a link to `symbiose` that runs that service: the passports' process,
# given no NATS, stops at start naming the setting (the server would have served).
alone="$("${buildah[@]}" run --isolation chroot --network host --user 65532:65532 \
    --env SYMBIOSE_LISTEN_ADDR=127.0.0.1:0 --env SYMBIOSE_METRICS_ADDR=off --env SYMBIOSE_WEB_ADDR=127.0.0.1:0 \
    "$container" -- /usr/local/bin/symbiose-passports 2>&1 || true)"
if ! grep -q "SYMBIOSE_NATS_URL" <<<"$alone"; then
    echo "smoke: /usr/local/bin/symbiose-passports did not run the passports service alone: $alone" >&2
    exit 1
fi
echo "smoke: symbiose-passports, a link to symbiose, runs the service alone: $(grep -m 1 -o 'SYMBIOSE_NATS_URL[^"]*' <<<"$alone" | head -c 100)"

# The data directory was written by the service's user, not root: /data is the image's
# volume, which buildah keeps with the container.
token="$(find "$out/storage" "$out/run" -path '*/data/operator.token' -o -path '*volumes*/operator.token' 2>/dev/null | head -n 1)"
if [ -z "$token" ]; then
    echo "smoke: the server wrote no /data/operator.token" >&2
    exit 1
fi
owner="$(stat -c %u "$token")"
if [ "$owner" != "65532" ]; then
    echo "smoke: /data/operator.token belongs to uid $owner, not 65532" >&2
    exit 1
fi
echo "smoke: /data/operator.token belongs to uid $owner"
echo "smoke: passed"
