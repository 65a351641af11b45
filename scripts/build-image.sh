#!/usr/bin/env bash
# Builds the resec container image without a Docker engine: an OCI image layout made with Debian's umoci
# (apt-get install umoci), holding the same FROM scratch file system as the Dockerfile:
#
#   /usr/local/bin/resec           the compiled agent (scripts/compile.sh)
#   /lib*/...                      the glibc libraries it links, as `ldd` lists them
#   /etc/passwd, /etc/hosts        user resec (uid 10001, no shell, no home) and localhost
#
# Nothing else: no shell, no package manager, no CA bundle (Deno carries its own roots).
#
#   scripts/build-image.sh [--from binary|bundle|auto] [--binary PATH] [--bundle PATH]
#                          [--layout DIR] [--tag TAG]
#   scripts/build-image.sh --rootfs-only DIR [--from ...]     # just the file system (the Dockerfile)
#
# --from binary (the default) needs dist/resec, which needs denort (see scripts/compile.sh). Where denort
# cannot be had, --from bundle builds a STAND-IN: the same image layout around the deno binary and the
# bundle dist/resec.js (scripts/bundle.sh), started as `deno run <lib/permissions.ts flags> resec.js`. It is
# labelled as such (tag suffix "-bundle", label io.resec.artifact=bundle-stand-in), carries the whole deno
# CLI, and under `deno run` a SIGUSR1 also opens V8's inspector on 127.0.0.1:9229. Ship the binary image.
# --from auto takes the binary when it exists and runs, else the stand-in.
#
# Prints the image's size (compressed layer + config, and unpacked) as the last lines.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The unprivileged user the image runs as; the Dockerfile's USER names the same ids.
RESEC_UID=10001
RESEC_GID=10001

usage() {
  sed -n '11,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

from="binary"
binary="$root/dist/resec"
bundle="$root/dist/resec.js"
layout="$root/dist/oci"
tag=""
rootfs_only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --from) [ $# -ge 2 ] || usage; from="$2"; shift 2 ;;
    --binary) [ $# -ge 2 ] || usage; binary="$2"; shift 2 ;;
    --bundle) [ $# -ge 2 ] || usage; bundle="$2"; shift 2 ;;
    --layout) [ $# -ge 2 ] || usage; layout="$2"; shift 2 ;;
    --tag) [ $# -ge 2 ] || usage; tag="$2"; shift 2 ;;
    --rootfs-only) [ $# -ge 2 ] || usage; rootfs_only="$2"; shift 2 ;;
    -h | --help) usage ;;
    *) echo "build-image.sh: unknown argument \"$1\"" >&2; usage ;;
  esac
done

# Whether $1 is an executable that answers `--version` as resec.
runs_as_resec() {
  [ -f "$1" ] && [ -x "$1" ] && "$1" --version 2>/dev/null | head -1 | grep -q '^resec '
}

case "$from" in
  binary)
    if ! runs_as_resec "$binary"; then
      echo "build-image.sh: \"$binary\" is not a resec executable that runs here. Build it with scripts/compile.sh (it needs denort), or build the labelled stand-in with --from bundle." >&2
      exit 1
    fi
    ;;
  bundle) ;;
  auto)
    if runs_as_resec "$binary"; then
      from="binary"
    else
      from="bundle"
      echo "build-image.sh: no runnable \"$binary\": building the bundle STAND-IN image instead" >&2
    fi
    ;;
  *) echo "build-image.sh: --from takes binary, bundle or auto, not \"$from\"" >&2; exit 2 ;;
esac

work="$(mktemp -d "${TMPDIR:-/tmp}/resec-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc"

if [ "$from" = "binary" ]; then
  executable="$binary"
  install -m 0755 "$binary" "$rootfs/usr/local/bin/resec"
  entrypoint=("/usr/local/bin/resec")
  env_vars=()
  artifact="binary"
else
  deno="$("$root/scripts/deno.sh" --print-path)"
  deno="$(readlink -f "$deno")"
  if [ ! -f "$bundle" ]; then
    "$root/scripts/bundle.sh" --output "$bundle" >&2
  fi
  executable="$deno"
  install -m 0755 "$deno" "$rootfs/usr/local/bin/deno"
  mkdir -p "$rootfs/usr/local/lib/resec"
  install -m 0644 "$bundle" "$rootfs/usr/local/lib/resec/resec.js"
  mapfile -t permission_flags < <("$deno" run --quiet --no-prompt "$root/lib/permissions.ts")
  entrypoint=("/usr/local/bin/deno" "run" "${permission_flags[@]}" "/usr/local/lib/resec/resec.js")
  # A daemon must not look for Deno updates; with no writable home, deno runs without a cache.
  env_vars=("DENO_NO_UPDATE_CHECK=1")
  artifact="bundle-stand-in"
fi

# The libraries the executable links, at the paths the dynamic loader looks for them.
ldd_output="$(ldd "$executable" 2>&1)" || {
  echo "build-image.sh: ldd cannot read \"$executable\" (built for another machine?): $ldd_output" >&2
  exit 1
}
if grep -q "not found" <<<"$ldd_output"; then
  echo "build-image.sh: \"$executable\" needs libraries this machine lacks:" >&2
  echo "$ldd_output" >&2
  exit 1
fi
while read -r library; do
  mkdir -p "$rootfs$(dirname "$library")"
  # Dereferenced: the image holds the files, not Debian's symlinks to them.
  cp -L "$library" "$rootfs$library"
  chmod 0755 "$rootfs$library"
done < <(grep -o '/[^ ]*' <<<"$ldd_output" | sort -u)

printf 'resec:x:%s:%s:resec:/nonexistent:/nonexistent\n' "$RESEC_UID" "$RESEC_GID" >"$rootfs/etc/passwd"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/hosts"
find "$rootfs" -type d -exec chmod 0755 {} +

if [ -n "$rootfs_only" ]; then
  mkdir -p "$rootfs_only"
  cp -a "$rootfs/." "$rootfs_only/"
  echo "build-image.sh: file system of the $artifact image in $rootfs_only ($(du -sh "$rootfs" | cut -f1))"
  exit 0
fi

command -v umoci >/dev/null 2>&1 || {
  echo "build-image.sh: umoci is not installed: apt-get install umoci" >&2
  exit 1
}
version="$(grep -o '"[0-9][^"]*"' "$root/lib/version.ts" | head -1 | tr -d '"')"
[ -n "$tag" ] || tag="$version"
[ "$artifact" = "binary" ] || tag="$tag-bundle"
case "$(uname -m)" in
  x86_64) architecture="amd64" ;;
  aarch64) architecture="arm64" ;;
  *) architecture="$(uname -m)" ;;
esac
rootless=()
[ "$(id -u)" -eq 0 ] || rootless=(--rootless)

[ -f "$layout/index.json" ] || umoci init --layout "$layout"
image="$layout:$tag"
if umoci ls --layout "$layout" | grep -qxF "$tag"; then umoci rm --image "$image"; fi
umoci new --image "$image"
umoci insert "${rootless[@]}" --image "$image" \
  --history.created_by "scripts/build-image.sh ($artifact)" "$rootfs" /
config_args=(
  --config.user "$RESEC_UID:$RESEC_GID"
  --config.workingdir /
  --config.stopsignal SIGTERM
  --os linux
  --architecture "$architecture"
  --config.label "org.opencontainers.image.title=resec"
  --config.label "org.opencontainers.image.version=$version"
  --config.label "io.resec.artifact=$artifact"
)
for part in "${entrypoint[@]}"; do config_args+=(--config.entrypoint "$part"); done
for variable in "${env_vars[@]}"; do config_args+=(--config.env "$variable"); done
if [ "$artifact" != "binary" ]; then
  config_args+=(--config.label "org.opencontainers.image.description=STAND-IN: deno + bundle, not the compiled binary")
fi
umoci config --image "$image" --history.created_by "scripts/build-image.sh config" "${config_args[@]}"
umoci gc --layout "$layout"

# Compressed size: what a registry stores and a node pulls (layers + config of this tag's manifest).
# shellcheck disable=SC2016 # JavaScript, not shell, in single quotes
compressed="$("$root/scripts/deno.sh" eval --quiet '
  const [layout, tag] = Deno.args;
  const blob = (digest) => JSON.parse(Deno.readTextFileSync(`${layout}/blobs/${digest.replace(":", "/")}`));
  const index = JSON.parse(Deno.readTextFileSync(`${layout}/index.json`));
  const entry = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag);
  const manifest = blob(entry.digest);
  console.log(manifest.config.size + manifest.layers.reduce((sum, layer) => sum + layer.size, 0));
' "$layout" "$tag")"
unpacked="$(du -sb "$rootfs" | cut -f1)"
echo "build-image.sh: built $image ($artifact, $architecture)"
echo "build-image.sh: size $compressed bytes compressed ($((compressed / 1048576)) MiB), $unpacked bytes unpacked ($((unpacked / 1048576)) MiB)"
