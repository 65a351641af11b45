#!/usr/bin/env bash
# Removes what multi-host test beds left behind: kills the processes in, and deletes, the network
# namespaces (rsbed-*) of every bed whose owning test process is dead. Tests do this by themselves when
# a bed starts; run this after an aborted run to free the machine at once.
#
#   scripts/bed-clean.sh          # beds whose owner is dead
#   scripts/bed-clean.sh --all    # every bed, even one whose test still runs
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# --allow-all: Deno reads /proc/<pid>/stat (is the owner alive?) only with every permission.
exec "$root/scripts/deno.sh" run --quiet --no-lock --allow-all \
  "$root/tests/support/bed/clean.ts" "$@"
