#!/usr/bin/env bash
# Builds tests/jwtgen (the operator-mode fixture generator) with Debian's Go
# and the official nats-io/jwt v2 and nkeys packages, in GOPATH mode (no
# module proxy here). Prints the binary's path. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${JWTGEN_WORK:-${CARGO_TARGET_DIR:-$ROOT/target}/jwtgen}"
PKGS=(golang-go golang-github-nats-io-jwt-dev golang-github-nats-io-nkeys-dev golang-golang-x-crypto-dev)
# shellcheck source=scripts/go-gopath.sh
source "$ROOT/scripts/go-gopath.sh"
go_build jwtgen
