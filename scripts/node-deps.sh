#!/usr/bin/env bash
# Installs the npm packages of tests/npm (the official NATS JavaScript
# client, jwt and nkeys libraries, and nats.ws's browser bundle, pinned in
# tests/npm/package.json and package-lock.json) into target/node (not
# checked in): for the auth callout service the tests run against
# nats-server and warden (tests/callout/service.mjs finds them at
# target/node/node_modules, or $CALLOUT_NODE_MODULES) and the browser test
# of the WebSocket listener. Idempotent: the stamp holds a hash of the
# manifest and lockfile, so editing either reinstalls.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
src=tests/npm
dest=target/node
stamp="$dest/.installed"
want="$(cat "$src/package.json" "$src/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -d $dest/node_modules ]]; then
  exit 0
fi
mkdir -p "$dest"
rm -f "$stamp"
cp "$src/package.json" "$dest/"
if [[ -f $src/package-lock.json ]]; then
  cp "$src/package-lock.json" "$dest/"
  # --ignore-scripts: these packages need no install scripts.
  (cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
else
  (cd "$dest" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
echo "$want" >"$stamp"
echo "node-deps.sh: installed $src/package.json into $dest"
