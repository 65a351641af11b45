#!/usr/bin/env bash
# Builds dist/resec.js: the whole agent, npm packages included, as one JavaScript file (`deno bundle`).
# It needs no node_modules and no Deno cache at run time, only a deno binary and the same permission
# flags as the compiled executable:
#
#   deno run $(deno run lib/permissions.ts) dist/resec.js [--version | --check | ...]
#
# This is what ships where `deno compile` cannot get its runtime base (see scripts/compile.sh).
#
#   scripts/bundle.sh [--output PATH] [--no-check]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

output="$root/dist/resec.js"
check=1
while [ $# -gt 0 ]; do
  case "$1" in
    --output | -o) [ $# -ge 2 ] || { echo "bundle.sh: $1 needs a path" >&2; exit 2; }; output="$2"; shift 2 ;;
    --output=*) output="${1#--output=}"; shift ;;
    --no-check) check=0; shift ;;
    -h | --help) sed -n '10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) echo "bundle.sh: unknown argument \"$1\"" >&2; exit 2 ;;
  esac
done
case "$output" in *.js) ;; *) echo "bundle.sh: the output must end in .js: \"$output\"" >&2; exit 2 ;; esac
case "$output" in /*) ;; *) output="$PWD/$output" ;; esac

deno="$("$root/scripts/deno.sh" --print-path)"
export DENO_NO_UPDATE_CHECK=1
cd "$root"
# deno bundle does not type-check; deno compile does, so check here too.
[ $check -eq 0 ] || "$deno" check --quiet main.ts
mkdir -p "$(dirname "$output")"
work="$(mktemp -d "${TMPDIR:-/tmp}/resec-bundle.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$deno" bundle --quiet --frozen --platform deno --output "$work/resec.js" main.ts

# Prove it stands alone: run it from an empty directory with an empty Deno cache and no environment.
mapfile -t permission_flags < <("$deno" run --quiet --no-prompt lib/permissions.ts)
mkdir "$work/empty" "$work/deno-dir"
version_line="$(cd "$work/empty" && env -i DENO_DIR="$work/deno-dir" DENO_NO_UPDATE_CHECK=1 \
  "$deno" run "${permission_flags[@]}" "$work/resec.js" --version 2>&1)" || true
case "$version_line" in
  "resec "*) ;;
  *)
    echo "bundle.sh: the bundle does not run on its own; --version printed:" >&2
    echo "$version_line" >&2
    exit 1
    ;;
esac

mv -f "$work/resec.js" "$output"
echo "bundle.sh: built $output ($(du -h "$output" | cut -f1)): $version_line"
