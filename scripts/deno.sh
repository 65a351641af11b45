#!/usr/bin/env bash
# Runs the project's pinned Deno, installing it from the npm package `deno` into .tools/ when needed.
# A `deno` on PATH is used only when it is the pinned version, so every machine runs the same toolchain.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.sh
source "$root/scripts/versions.sh"

resolve_deno() {
  if [ -n "${DENO:-}" ] && [ -x "$DENO" ]; then echo "$DENO"; return; fi
  local local_bin="$root/.tools/bin/deno"
  if [ -x "$local_bin" ]; then echo "$local_bin"; return; fi
  if command -v deno >/dev/null 2>&1 && deno --version 2>/dev/null | head -1 | grep -q "^deno $DENO_VERSION "; then
    command -v deno; return
  fi
  command -v npm >/dev/null 2>&1 || { echo "deno.sh: npm is needed to install Deno $DENO_VERSION (apt-get install nodejs npm)" >&2; exit 1; }
  echo "deno.sh: installing Deno $DENO_VERSION from npm into .tools/" >&2
  local prefix="$root/.tools/deno-$DENO_VERSION"
  mkdir -p "$prefix" "$root/.tools/bin"
  npm install --prefix "$prefix" --no-save --no-audit --no-fund --loglevel=error "deno@$DENO_VERSION" >&2
  ln -sf "../deno-$DENO_VERSION/node_modules/deno/deno" "$local_bin"
  "$local_bin" --version >&2
  echo "$local_bin"
}

deno_bin="$(resolve_deno)"
export DENO_NO_UPDATE_CHECK=1
if [ "${1:-}" = "--print-path" ]; then echo "$deno_bin"; exit 0; fi
exec "$deno_bin" "$@"
