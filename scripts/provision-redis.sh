#!/usr/bin/env bash
# Makes sure redis-server, redis-cli (and redis-sentinel, a benchmark peer) come from Debian's packages.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
if [ ${#missing[@]} -gt 0 ]; then
  echo "provision-redis: installing ${missing[*]} from Debian's packages" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq >&2
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # The Debian package starts a system-wide server on 6379; the tests use their own on free ports.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $sudo_cmd systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
fi
redis-server --version | head -1 >&2
