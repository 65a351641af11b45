# Pinned versions of the toolchain and of the test dependencies; sourced by the other scripts.
# shellcheck shell=bash
DENO_VERSION="2.9.6"
# Newest Consul release on the Go module proxy that builds with Go 1.26 (checked 2026-11-21).
CONSUL_VERSION="v1.22.7"
# The release's own tree builds against its in-repo api module; the tagged api release carrying the same
# fields (ACLToken.Name, ACLAuthMethod.TokenNameFormat) is this one.
CONSUL_API_VERSION="v1.34.3"
# The Go resec (mixed-cluster tests and benchmark peer) is built from ../shared/peers/go-resec; this
# labels its --version, and this golang.org/x/sys replaces its 2021 one should that stop compiling.
GO_RESEC_LABEL="seatgeek-db0044d"
GO_RESEC_XSYS_VERSION="v0.41.0"
RESEC_CACHE_DIR="${RESEC_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/resec}"
