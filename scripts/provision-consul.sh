#!/usr/bin/env bash
# Prints the path of a `consul` binary for the tests, building the pinned release from the Go module proxy
# when there is none on PATH. The build is cached in $RESEC_CACHE_DIR, so only the first run pays for it.
#
# Consul's root module carries `replace` directives, so `go install module@version` refuses it; a throwaway
# wrapper module that requires it builds the same `main` package (replace directives of a dependency are
# ignored, and the versions it requires are used instead).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.sh
source "$root/scripts/versions.sh"

if [ -n "${CONSUL_BIN:-}" ]; then echo "$CONSUL_BIN"; exit 0; fi
if command -v consul >/dev/null 2>&1; then command -v consul; exit 0; fi

dir="$RESEC_CACHE_DIR/consul-$CONSUL_VERSION"
bin="$dir/consul"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

command -v go >/dev/null 2>&1 || { echo "provision-consul: Go is needed to build Consul $CONSUL_VERSION" >&2; exit 1; }
echo "provision-consul: building Consul $CONSUL_VERSION with $(go version | cut -d' ' -f3) (first run only, takes minutes)" >&2
work="$dir/build"
mkdir -p "$work"
cat >"$work/go.mod" <<MOD
module resec.test/consulbuild

go 1.25
MOD
cat >"$work/tools.go" <<'SRC'
//go:build tools

package tools

import _ "github.com/hashicorp/consul"
SRC
started=$(date +%s)
(
  cd "$work"
  export GOFLAGS="-mod=mod -buildvcs=false"
  go get "github.com/hashicorp/consul@$CONSUL_VERSION" "github.com/hashicorp/consul/api@$CONSUL_API_VERSION" >&2
  go build -trimpath \
    -ldflags "-s -w -X github.com/hashicorp/consul/version.VersionPrerelease=" \
    -o "$bin.tmp" github.com/hashicorp/consul >&2
)
mv "$bin.tmp" "$bin"
echo "provision-consul: built $("$bin" version | head -1) in $(($(date +%s) - started))s" >&2
echo "$bin"
