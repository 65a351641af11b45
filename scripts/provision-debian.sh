#!/usr/bin/env bash
# Installs the Debian packages the tests use when they are missing: redis-server and redis-cli (the
# servers under test), redis-sentinel (a benchmark peer), systemd (systemd-analyze verifies our units),
# umoci (builds the scratch image without a Docker engine), util-linux (unshare/mount for its test),
# iproute2 and nftables (the multi-host bed: network namespaces, bridge, veth pairs, Consul cuts),
# and prometheus (promtool checks and tests the alert rules; the server evaluates them against agents).
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v umoci >/dev/null 2>&1 || missing+=(umoci)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "provision-debian: installing ${missing[*]} from Debian's packages" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq >&2
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # The Debian packages start system-wide servers (Redis on 6379, Prometheus on 9090); the tests
  # start their own on free ports.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $sudo_cmd systemctl disable --now redis-server >/dev/null 2>&1 || true
    $sudo_cmd systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
redis-server --version | head -1 >&2
