#!/usr/bin/env bash
# Prints the path of a Go resec binary (seatgeek/resec), the peer of the mixed-cluster tests
# (tests/migration/) and of the benchmark (bench/run.ts), building it when it is not cached yet.
#
#   scripts/provision-go-resec.sh            # prints .../go-resec-<source hash>/resec
#
# The source is the MIT snapshot at ../shared/peers/go-resec beside the repository (GO_RESEC_SRC names
# another directory): the Go module proxy no longer serves the module itself, but its dependencies
# are ordinary modules and come from the proxy. The source is read-only (CI mounts it so), so it is
# copied into $RESEC_CACHE_DIR and built there; the binary is cached under a hash of the source, so a
# changed snapshot builds afresh. Nothing of the Go resec is committed to this repository.
#
# GO_RESEC_BIN names a binary to use as is.
#
# Exit codes: 0 built or cached (the path is printed), 1 the build failed, 3 there is no source.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.sh
source "$root/scripts/versions.sh"

if [ -n "${GO_RESEC_BIN:-}" ]; then echo "$GO_RESEC_BIN"; exit 0; fi

src="${GO_RESEC_SRC:-$root/../shared/peers/go-resec}"
if [ ! -f "$src/go.mod" ] || [ ! -f "$src/main.go" ]; then
  echo "provision-go-resec: no Go resec source at $src (expected ../shared/peers/go-resec beside the" \
    "repository, or GO_RESEC_SRC)" >&2
  exit 3
fi
src="$(cd "$src" && pwd)"

# The hash covers every file's path and content, so any edit of the snapshot gives a new build.
hash="$(cd "$src" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
dir="$RESEC_CACHE_DIR/go-resec-$hash"
bin="$dir/resec"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

command -v go >/dev/null 2>&1 || { echo "provision-go-resec: Go is needed to build the Go resec" >&2; exit 1; }
echo "provision-go-resec: building the Go resec from $src with $(go version | cut -d' ' -f3)" >&2
started=$(date +%s)
work="$dir/src"
rm -rf "$work"
mkdir -p "$dir"
cp -R "$src" "$work"
chmod -R u+w "$work"
build() {
  go build -trimpath -ldflags "-s -w -X main.Version=$GO_RESEC_LABEL" -o "$bin.tmp" . >&2
}
(
  cd "$work"
  export GOFLAGS="-mod=mod -buildvcs=false"
  # Its 2021 dependency tree: should it stop compiling with this Go, lift the usual culprit (old
  # golang.org/x/sys) in the copy only, and build again.
  build || {
    echo "provision-go-resec: lifting golang.org/x/sys to $GO_RESEC_XSYS_VERSION in the copy" >&2
    go mod edit -require="golang.org/x/sys@$GO_RESEC_XSYS_VERSION" && build
  }
) || {
  echo "provision-go-resec: building the Go resec from $src failed (see above)" >&2
  rm -rf "$dir"
  exit 1
}
mv "$bin.tmp" "$bin"
rm -rf "$work"
echo "provision-go-resec: built $bin in $(($(date +%s) - started))s" >&2
echo "$bin"
