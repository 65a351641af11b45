#!/usr/bin/env bash
# The newcomer's second command: a local sandbox (a dev Consul, three Redis servers, three agents)
# that prints the roles as they change. Press "k" + Enter to kill the master and watch a failover;
# Ctrl-C stops and removes everything. Installs what it needs first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/bootstrap.sh"
CONSUL_BIN="$("$root/scripts/provision-consul.sh")"
export CONSUL_BIN
RESEC_TEST_TMP="$(mktemp -d "${TMPDIR:-/tmp}/resec-sandbox.XXXXXX")"
export RESEC_TEST_TMP
trap 'pkill -f -- "$RESEC_TEST_TMP" 2>/dev/null || true; rm -rf "$RESEC_TEST_TMP"' EXIT
"$root/scripts/deno.sh" run --allow-all sandbox/main.ts
