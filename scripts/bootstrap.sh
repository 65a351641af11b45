#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine with Go and Node: the pinned Deno (npm),
# redis-server, systemd and umoci (Debian) and Consul (built from the Go module proxy, cached). Safe to run again: a warm
# machine finishes in seconds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/deno.sh" --print-path >/dev/null
"$root/scripts/provision-debian.sh"
"$root/scripts/provision-consul.sh" >/dev/null
