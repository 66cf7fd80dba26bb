#!/usr/bin/env bash
# Builds the Symbiose image with buildah (no daemon, no base image) and writes it as an OCI
# archive, with its software bill of materials beside it:
#
#   image/build.sh            # target/image/symbiose-<version>.oci.tar and .spdx.json
#
# It builds the two release binaries it ships (`symbiose`, whose links are the services
# alone, and `symbiose-catalog`), writes the SPDX bill of
# materials of the Rust dependencies (cargo-sbom), stages the root file system
# (image/stage.sh) and builds image/Containerfile. buildah keeps its images under
# target/image/storage (the vfs driver: no overlay mount needed); the image is tagged
# `symbiose:<version>` there. Needs buildah, cargo-sbom (`cargo install --locked
# cargo-sbom@0.10.0`) and objcopy. Set SYMBIOSE_IMAGE_SOURCE to the repository's public URL
# for the image's source label (otherwise the origin remote's URL).
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/image
# The version and the licence (an SPDX expression, spaces and all) of the `symbiose` crate.
read -r version licenses < <(cargo metadata --no-deps --format-version 1 --locked |
    python3 -c 'import json, sys; p = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == "symbiose"); print(p["version"], p["license"])')
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then revision="$revision-dirty"; fi
# Without credentials: a remote URL may carry a user and password.
source_url="${SYMBIOSE_IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null | sed -E 's#://[^/@]*@#://#' || true)}"
source_url="${source_url:-unknown}"
tag="symbiose:$version"
archive="$out/symbiose-$version.oci.tar"
buildah=(buildah --root "$PWD/$out/storage" --runroot "$PWD/$out/run" --storage-driver vfs)

for tool in buildah objcopy cargo-sbom; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "image: $tool is missing (buildah and binutils from Debian's packages, cargo install --locked cargo-sbom@0.10.0)" >&2
        exit 1
    fi
done

started=$(date +%s)
echo "image: release build of the servers and the client"
cargo build --release --locked -p symbiose -p symbiose-catalog --bin symbiose --bin symbiose-catalog
built=$(date +%s)

mkdir -p "$out"
echo "image: software bill of materials (SPDX 2.3, cargo-sbom)"
cargo sbom --output-format spdx_json_2_3 >"$out/sbom.spdx.json"
python3 - "$out/sbom.spdx.json" <<'PY'
import collections, json, sys
document = json.load(open(sys.argv[1]))
packages = [p for p in document["packages"] if not p["name"].startswith("symbiose")]
licences = collections.Counter(p.get("licenseDeclared", "NOASSERTION") for p in packages)
print(f"image: {len(packages)} third-party crates; declared licences:")
for licence, count in licences.most_common():
    print(f"  {count:4}  {licence}")
PY

image/stage.sh target/release "$out/context" "$out/sbom.spdx.json"

echo "image: buildah build $tag (from scratch)"
"${buildah[@]}" rmi --force "$tag" >/dev/null 2>&1 || true
"${buildah[@]}" build --quiet --isolation chroot --layers=false --pull-never \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    --build-arg "SOURCE=$source_url" --build-arg "LICENSES=$licenses" \
    -f image/Containerfile -t "$tag" "$out/context" >/dev/null
rm -f "$archive"
"${buildah[@]}" push --quiet "$tag" "oci-archive:$archive:$tag"
cp "$out/sbom.spdx.json" "$out/symbiose-$version.spdx.json"
echo "$tag" >"$out/tag"
finished=$(date +%s)

unpacked="$(du -sb "$out/context/rootfs" | cut -f1)"
compressed="$(stat -c %s "$archive")"
python3 -c 'import sys; tag, archive, c, u = sys.argv[1:]; print(f"image: {tag}, archive {archive}: {int(c) / 1e6:.1f} MB compressed (target: under 60 MB), {int(u) / 1e6:.1f} MB unpacked")' \
    "$tag" "$archive" "$compressed" "$unpacked"
echo "image: labels: version $version, revision $revision, source $source_url, licences $licenses"
echo "image: built in $((finished - started)) s, of which $((built - started)) s of release build"
