#!/usr/bin/env bash
# Builds tests/sysdecode (decodes $SYS answers into nats-server's own Go
# types, for tests/nats_cli.rs) with Debian's Go and nats-server 2.9.10
# source package, in GOPATH mode (no module proxy here). Prints the binary's
# path. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${SYSDECODE_WORK:-${CARGO_TARGET_DIR:-$ROOT/target}/sysdecode}"
# The server package's dependencies (jwt, nkeys, compress, x/crypto, ...)
# come with it.
PKGS=(golang-go golang-github-nats-io-nats-server-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "sysdecode.sh: installing ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export GO111MODULE=off GOFLAGS= GOTOOLCHAIN=local
export GOPATH="/usr/share/gocode:${WORK}/.gopath"
export GOCACHE="${GOCACHE:-${WORK}/.gocache}"
# Debian ships the server under github.com/nats-io/nats-server, without the
# module's /v2 (jwt has a v2 directory; nats-server has none), and GOPATH
# mode resolves import paths literally: a link supplies the /v2 path.
link="${WORK}/.gopath/src/github.com/nats-io/nats-server/v2"
mkdir -p "$(dirname "$link")"
[[ -L "$link" ]] || ln -s /usr/share/gocode/src/github.com/nats-io/nats-server "$link"
src="$ROOT/tests/sysdecode/main.go"
out="${WORK}/sysdecode"
if [[ ! -x "$out" || "$src" -nt "$out" ]]; then
  (cd "$ROOT/tests/sysdecode" && go build -o "$out" .) >&2
fi
echo "$out"
