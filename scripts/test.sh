#!/usr/bin/env bash
# The test suite: unit tests, then integration and end-to-end tests against real Consul and redis-server
# processes. Installs what it needs first (scripts/bootstrap.sh), prints `N passed, N failed`, exits
# non-zero on any failure, and fails if a test server outlives the run.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh tests/unit      # a subset (any `deno test` arguments)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/bootstrap.sh"
deno="$("$root/scripts/deno.sh" --print-path)"
CONSUL_BIN="$("$root/scripts/provision-consul.sh")"
export CONSUL_BIN DENO_NO_UPDATE_CHECK=1
# The mixed-cluster tests (tests/migration/) run the Go resec beside ours; unset when it has no source.
if GO_RESEC_BIN="$("$root/scripts/provision-go-resec.sh" 2>/dev/null)"; then export GO_RESEC_BIN; fi
RESEC_TEST_TMP="$(mktemp -d "${TMPDIR:-/tmp}/resec-test.XXXXXX")"
export RESEC_TEST_TMP
# Integration tests mostly wait on servers, so run more modules than there are cores.
export DENO_JOBS="${DENO_JOBS:-4}"

sweep() {
  # Multi-host beds whose test process died (a timeout kill) leave namespaces and the processes in
  # them: remove them. Beds of test runs still going elsewhere are left alone.
  if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null 2>&1; then
    "$root/scripts/bed-clean.sh" >&2 || true
  fi
  # Any server still naming this run's directory was leaked by a test: kill it and say so.
  local leaked
  leaked="$(pgrep -f -- "$RESEC_TEST_TMP" || true)"
  if [ -n "$leaked" ]; then
    echo "test.sh: test servers survived the run and were killed:" >&2
    ps -o pid=,args= -p $leaked >&2 || true
    kill -9 $leaked 2>/dev/null || true
    return 1
  fi
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tests/)
mkdir -p test-results
rm -f test-results/junit.xml
status=0
# A hung test must fail the run, not stall CI: the whole suite takes about a minute when warm.
limit="${RESEC_TEST_TIMEOUT:-15m}"
timeout --kill-after=30s "$limit" \
  "$deno" test --allow-all --parallel --junit-path=test-results/junit.xml "${targets[@]}" || status=$?
if [ $status -eq 124 ] || [ $status -eq 137 ]; then
  echo "test.sh: the tests did not finish within $limit (RESEC_TEST_TIMEOUT): a test hangs;" \
    "see the 'has been running for over' lines above" >&2
fi
sweep || status=1
if [ -f test-results/junit.xml ]; then
  "$deno" run --allow-read scripts/junit-summary.ts test-results/junit.xml || status=1
else
  echo "0 passed, 1 failed"
  status=1
fi
[ $status -eq 0 ] && rm -rf "$RESEC_TEST_TMP"
exit $status
