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
# shellcheck source=scripts/go-gopath.sh
source "$ROOT/scripts/go-gopath.sh"
# Debian ships the server under github.com/nats-io/nats-server, without the
# module's /v2 (jwt has a v2 directory; nats-server has none), and GOPATH
# mode resolves import paths literally: a link supplies the /v2 path.
link="${WORK}/.gopath/src/github.com/nats-io/nats-server/v2"
mkdir -p "$(dirname "$link")"
[[ -L "$link" ]] || ln -s /usr/share/gocode/src/github.com/nats-io/nats-server "$link"
go_build sysdecode
