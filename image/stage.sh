#!/usr/bin/env bash
# Stages the image's build context from a release build: `rootfs/` (the binaries stripped of
# their debug information, the services alone as links to `symbiose`, the C libraries `ldd` says they load and their loader, CA
# certificates, the user database, the software bill of materials) and an empty `data/`.
#
#   image/stage.sh <release dir> <context dir> <sbom file>
#
# The release dir holds the two binaries (`cargo build --release --locked -p symbiose -p
# symbiose-catalog --bin symbiose --bin symbiose-catalog`); the context dir is made anew.
set -euo pipefail

release="${1:?the directory of the release build, target/release}"
context="${2:?the build context to make}"
sbom="${3:?the software bill of materials (SPDX JSON)}"

binaries=(symbiose symbiose-catalog)
# The services alone are links to `symbiose`, which runs the service its name says: one copy of
# the code they share instead of five.
services=(symbiose-listings symbiose-matching symbiose-logistics symbiose-settlement symbiose-passports)
uid=65532

rm -rf "$context"
root="$context/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/usr/share/doc/symbiose" "$root/tmp" \
    "$context/data"
chmod 1777 "$root/tmp"

for binary in "${binaries[@]}"; do
    if [ ! -x "$release/$binary" ]; then
        echo "stage: $release/$binary is missing: build it first (cargo build --release --locked -p symbiose -p symbiose-catalog --bin symbiose --bin symbiose-catalog)" >&2
        exit 1
    fi
    # Backtraces keep their function names; file and line numbers stay in the release build.
    objcopy --strip-debug "$release/$binary" "$root/usr/local/bin/$binary"
done
for service in "${services[@]}"; do
    ln -s symbiose "$root/usr/local/bin/$service"
done

# The shared libraries and the loader, at the paths the binaries name. Anything `ldd` cannot
# find stops the staging: the image would not start.
libraries="$(for binary in "${binaries[@]}"; do ldd "$release/$binary"; done | sort -u)"
if grep -q "not found" <<<"$libraries"; then
    echo "stage: a library is missing: $libraries" >&2
    exit 1
fi
while read -r path; do
    mkdir -p "$root$(dirname "$path")"
    cp -L "$path" "$root$path"
done < <(awk '/=> \// { print $3 } /^\t\// { print $1 }' <<<"$libraries" | sort -u)

# CA certificates, for TLS to NATS, PostgreSQL, EventStoreDB and the OTLP collector.
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"

# The user the services run as (the chart's runAsUser), its home the data directory.
cat >"$root/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/sbin/nologin
symbiose:x:$uid:$uid:Symbiose:/data:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<GROUP
root:x:0:
symbiose:x:$uid:
GROUP

cp "$sbom" "$root/usr/share/doc/symbiose/sbom.spdx.json"
cp LICENSE "$root/usr/share/doc/symbiose/LICENSE" 2>/dev/null || true

echo "staged $(find "$root" -type f | wc -l) files, $(du -sh "$root" | cut -f1) in $root"
