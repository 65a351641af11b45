#!/usr/bin/env bash
# Prints the path of a Go resec binary (github.com/seatgeek/resec), the benchmark peer of bench/run.ts,
# building it from the Go module proxy with the machine's Go toolchain when it is not cached yet. Go is a
# benchmark dependency only: nothing of the Go resec is committed, the build lives in $RESEC_CACHE_DIR.
#
#   scripts/provision-go-resec.sh            # prints .../go-resec-<version>/resec
#
# GO_RESEC_BIN names a binary to use as is. GO_RESEC_VERSION (environment first, then scripts/versions.sh)
# pins the version; "v0.0.0" there means "not pinned yet": the newest version the proxy lists is used and
# the script says which, so it can be pinned.
#
# The module is built from a throwaway wrapper module that requires it (as provision-consul.sh does): the
# wrapper lets us lift dependencies that no longer compile with a current Go (old golang.org/x/sys) without
# touching the Go resec's own go.mod, and it ignores any replace directive of the required module.
#
# Exit codes: 0 built or cached (the path is printed), 1 the build failed, 3 the module proxy does not serve
# the module (the message quotes its answer).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requested="${GO_RESEC_VERSION:-}"
# shellcheck source=versions.sh
source "$root/scripts/versions.sh"
module="github.com/seatgeek/resec"

if [ -n "${GO_RESEC_BIN:-}" ]; then echo "$GO_RESEC_BIN"; exit 0; fi
version="${requested:-$GO_RESEC_VERSION}"

if [ "$version" != "v0.0.0" ] && [ -x "$RESEC_CACHE_DIR/go-resec-$version/resec" ]; then
  echo "$RESEC_CACHE_DIR/go-resec-$version/resec"
  exit 0
fi

command -v go >/dev/null 2>&1 || { echo "provision-go-resec: Go is needed to build the Go resec" >&2; exit 1; }

if [ "$version" = "v0.0.0" ]; then
  # Not pinned: ask the proxy which versions it has; the newest release, else its newest pseudo-version.
  if ! answer="$(GOFLAGS=-mod=mod go list -m -versions -json "$module@latest" 2>&1)"; then
    echo "provision-go-resec: the Go module proxy ($(go env GOPROXY)) does not serve $module:" >&2
    echo "$answer" | sed 's/^/  /' >&2
    exit 3
  fi
  version="$(echo "$answer" | sed -n 's/^[[:space:]]*"Version": "\(.*\)",\{0,1\}$/\1/p' | head -1)"
  [ -n "$version" ] || { echo "provision-go-resec: cannot read a version from: $answer" >&2; exit 1; }
  echo "provision-go-resec: $module is not pinned; using the newest version the proxy has, $version" >&2
  echo "provision-go-resec: pin it with GO_RESEC_VERSION=\"$version\" in scripts/versions.sh" >&2
  if [ -x "$RESEC_CACHE_DIR/go-resec-$version/resec" ]; then
    echo "$RESEC_CACHE_DIR/go-resec-$version/resec"
    exit 0
  fi
fi

dir="$RESEC_CACHE_DIR/go-resec-$version"
bin="$dir/resec"
work="$dir/build"
mkdir -p "$work"
cat >"$work/go.mod" <<MOD
module resec.test/goresecbuild

go 1.25
MOD
cat >"$work/tools.go" <<'SRC'
//go:build tools

package tools

import _ "github.com/seatgeek/resec"
SRC
echo "provision-go-resec: building $module $version with $(go version | cut -d' ' -f3)" >&2
started=$(date +%s)
build() {
  go build -trimpath -ldflags "-s -w" -o "$bin.tmp" "$module" >&2
}
(
  cd "$work"
  export GOFLAGS="-mod=mod -buildvcs=false"
  if ! fetched="$(go get "$module@$version" 2>&1)"; then
    echo "$fetched" >&2
    if echo "$fetched" | grep -q "403\|404\|410\|not available\|not found"; then exit 3; fi
    exit 1
  fi
  # A 2020-era dependency tree: when it no longer compiles with this Go, lift the usual culprit and retry.
  build || { go get golang.org/x/sys@latest >&2 && build; }
) || {
  status=$?
  if [ $status -eq 3 ]; then
    echo "provision-go-resec: the Go module proxy ($(go env GOPROXY)) does not serve $module@$version" >&2
  else
    echo "provision-go-resec: building $module@$version failed (see above)" >&2
  fi
  rm -rf "$dir"
  exit $status
}
mv "$bin.tmp" "$bin"
echo "provision-go-resec: built $bin in $(($(date +%s) - started))s" >&2
echo "$bin"
