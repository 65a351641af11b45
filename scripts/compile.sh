#!/usr/bin/env bash
# Builds the self-contained executable dist/resec with `deno compile`, baking in the permission flags of
# lib/permissions.ts (the same ones the tests run the agent with).
#
#   scripts/compile.sh [--target x86_64-unknown-linux-gnu|aarch64-unknown-linux-gnu] [--output PATH]
#                      [--cached-only] [--no-check] [--hooks]
#
# --hooks bakes in the permission to run /bin/sh, which ON_ROLE_CHANGE needs; without it the executable
# cannot start any program, and refuses to start (exit 2) when ON_ROLE_CHANGE is set.
#
# `deno compile` appends the program to a runtime base binary, `denort`, that it takes from DENORT_BIN (the
# path of an unzipped denort), else from Deno's cache ($DENO_DIR/dl/release/v<version>/denort-<target>.zip),
# else downloads from dl.deno.land. For an offline build, set DENORT_BIN or pre-seed the cache; with
# --cached-only nothing is downloaded at all. Where no denort can be had, scripts/bundle.sh builds the
# equivalent single-file bundle dist/resec.js, run with `deno run`.
#
# Exit codes: 0 built, 1 failed, 2 bad usage, 3 no denort available (the message says what to do).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.sh
source "$root/scripts/versions.sh"

usage() {
  sed -n '5,6p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

host_target() {
  case "$(uname -m)" in
    x86_64 | amd64) echo "x86_64-unknown-linux-gnu" ;;
    aarch64 | arm64) echo "aarch64-unknown-linux-gnu" ;;
    *) echo "unsupported-$(uname -m)" ;;
  esac
}

# The ELF machine of a file (x86_64, aarch64, or what else it holds), read from its header.
elf_machine() {
  local magic machine
  magic="$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')"
  [ "$magic" = "7f454c46" ] || { echo "not-elf"; return; }
  machine="$(od -An -tu2 -j18 -N2 "$1" | tr -d ' \n')"
  case "$machine" in
    62) echo "x86_64" ;;
    183) echo "aarch64" ;;
    *) echo "elf-machine-$machine" ;;
  esac
}

target="$(host_target)"
output="$root/dist/resec"
cached_only=0
check_flags=()
permission_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --target) [ $# -ge 2 ] || usage; target="$2"; shift 2 ;;
    --target=*) target="${1#--target=}"; shift ;;
    --output | -o) [ $# -ge 2 ] || usage; output="$2"; shift 2 ;;
    --output=*) output="${1#--output=}"; shift ;;
    --cached-only) cached_only=1; shift ;;
    --no-check) check_flags=(--no-check); shift ;;
    --hooks) permission_args=(--hooks); shift ;;
    -h | --help) usage ;;
    *) echo "compile.sh: unknown argument \"$1\"" >&2; usage ;;
  esac
done
case "$target" in
  x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
  *)
    echo "compile.sh: unsupported target \"$target\": expected x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu" >&2
    exit 2
    ;;
esac
target_machine="${target%%-*}"
case "$output" in /*) ;; *) output="$PWD/$output" ;; esac

deno="$("$root/scripts/deno.sh" --print-path)"
export DENO_NO_UPDATE_CHECK=1
deno_dir="$("$deno" info --json | sed -n 's/^ *"denoDir": *"\(.*\)",\{0,1\}$/\1/p' | head -1)"
cached_zip="$deno_dir/dl/release/v$DENO_VERSION/denort-$target.zip"
download_url="https://dl.deno.land/release/v$DENO_VERSION/denort-$target.zip"

explain_denort() {
  cat >&2 <<EOF
compile.sh: $1
  deno compile builds dist/resec on top of denort, Deno's runtime without the CLI, for the target
  platform. It is not in Deno's cache:
    $cached_zip
  and DENORT_BIN is not set. To build offline:
    1. on a machine that can reach dl.deno.land, fetch
       $download_url
    2. here, unzip it and run:  DENORT_BIN=/path/to/denort scripts/compile.sh --target $target
       (or copy the zip, unchanged, to the cache path above)
  The full deno binary is not a denort: built on it, the output would be the deno CLI.
  Without denort, scripts/bundle.sh builds dist/resec.js, the same program as one JavaScript file that
  runs with \`deno run\` and the same permission flags.
EOF
}

if [ -n "${DENORT_BIN:-}" ]; then
  if [ ! -f "$DENORT_BIN" ] || [ ! -x "$DENORT_BIN" ]; then
    echo "compile.sh: DENORT_BIN \"$DENORT_BIN\" is not an executable file: point it at an unzipped denort-$target" >&2
    exit 3
  fi
  base_machine="$(elf_machine "$DENORT_BIN")"
  if [ "$base_machine" != "$target_machine" ]; then
    echo "compile.sh: DENORT_BIN \"$DENORT_BIN\" is a $base_machine file, not a denort for $target" >&2
    exit 3
  fi
  DENORT_BIN="$(cd "$(dirname "$DENORT_BIN")" && pwd)/$(basename "$DENORT_BIN")"
  export DENORT_BIN
  echo "compile.sh: runtime base from DENORT_BIN=$DENORT_BIN" >&2
elif [ -f "$cached_zip" ]; then
  echo "compile.sh: runtime base from Deno's cache: $cached_zip" >&2
elif [ "$cached_only" -eq 1 ]; then
  explain_denort "--cached-only: no denort for $target is available, and nothing will be downloaded."
  exit 3
else
  echo "compile.sh: no cached denort for $target; deno compile will try $download_url" >&2
fi

mapfile -t permission_flags < <("$deno" run --quiet --no-prompt "$root/lib/permissions.ts" "${permission_args[@]}")
[ ${#permission_flags[@]} -gt 0 ] || { echo "compile.sh: lib/permissions.ts printed no flags" >&2; exit 1; }

mkdir -p "$(dirname "$output")"
work="$(mktemp -d "${TMPDIR:-/tmp}/resec-compile.XXXXXX")"
trap 'rm -rf "$work"' EXIT
candidate="$work/resec"
cached_flags=()
[ "$cached_only" -eq 1 ] && cached_flags=(--cached-only)

cd "$root"
status=0
"$deno" compile --quiet --frozen --target "$target" --output "$candidate" \
  "${cached_flags[@]}" "${check_flags[@]}" "${permission_flags[@]}" main.ts 2>"$work/stderr" || status=$?
if [ $status -ne 0 ]; then
  cat "$work/stderr" >&2
  if grep -qiE 'base binary|denort|dl\.deno\.land' "$work/stderr"; then
    explain_denort "deno compile could not get its runtime base binary (denort) for $target."
    exit 3
  fi
  echo "compile.sh: deno compile failed (exit $status)" >&2
  exit 1
fi
cat "$work/stderr" >&2

# A wrong base still "compiles": catch it here rather than at a failover.
built_machine="$(elf_machine "$candidate")"
if [ "$built_machine" != "$target_machine" ]; then
  echo "compile.sh: the output is a $built_machine file, not a $target executable" >&2
  exit 1
fi
if [ "$target_machine" = "$(uname -m)" ]; then
  version_line="$("$candidate" --version 2>&1 | head -1 || true)"
  case "$version_line" in
    "resec "*) ;;
    "deno "*)
      echo "compile.sh: the output is the deno CLI, not resec: DENORT_BIN points at the full deno binary, not a denort" >&2
      exit 3
      ;;
    *)
      echo "compile.sh: the output does not run as resec; \`--version\` printed: $version_line" >&2
      exit 1
      ;;
  esac
  case "$version_line" in
    *"deno $DENO_VERSION,"*) ;;
    *) echo "compile.sh: warning: built on a denort of another Deno version than $DENO_VERSION: $version_line" >&2 ;;
  esac
else
  version_line="(not run: built for $target on $(uname -m))"
fi

mv -f "$candidate" "$output"
size="$(du -h "$output" | cut -f1)"
echo "compile.sh: built $output ($target, $size)"
echo "compile.sh: $version_line"
