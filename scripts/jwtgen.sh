#!/usr/bin/env bash
# Builds tests/jwtgen (the operator-mode fixture generator) with Debian's Go
# and the official nats-io/jwt v2 and nkeys packages, in GOPATH mode (no
# module proxy here). Prints the binary's path. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${JWTGEN_WORK:-${CARGO_TARGET_DIR:-$ROOT/target}/jwtgen}"
PKGS=(golang-go golang-github-nats-io-jwt-dev golang-github-nats-io-nkeys-dev golang-golang-x-crypto-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "jwtgen.sh: installing ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export GO111MODULE=off GOFLAGS= GOTOOLCHAIN=local
export GOPATH="/usr/share/gocode:${WORK}/.gopath"
export GOCACHE="${GOCACHE:-${WORK}/.gocache}"
mkdir -p "${WORK}/.gopath"
src="$ROOT/tests/jwtgen/main.go"
out="${WORK}/jwtgen"
if [[ ! -x "$out" || "$src" -nt "$out" ]]; then
  (cd "$ROOT/tests/jwtgen" && go build -o "$out" .) >&2
fi
echo "$out"
