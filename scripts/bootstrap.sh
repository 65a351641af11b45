#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine with Go and Node: the pinned Deno (npm),
# redis-server, systemd and umoci (Debian), Consul (built from the Go module proxy, cached) and the Go
# resec of the mixed-cluster tests (built from ../shared/peers/go-resec, cached). Safe to run again: a
# warm machine finishes in seconds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/deno.sh" --print-path >/dev/null
"$root/scripts/provision-debian.sh"
"$root/scripts/provision-consul.sh" >/dev/null
# Without the Go resec's source (a clone without ../shared) the mixed-cluster tests say they were skipped.
status=0
"$root/scripts/provision-go-resec.sh" >/dev/null || status=$?
[ $status -eq 0 ] || [ $status -eq 3 ] || exit $status
