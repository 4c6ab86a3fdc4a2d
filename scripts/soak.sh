#!/usr/bin/env bash
# The long soak: many clients doing mixed publish/subscribe/request against
# the release binary, server memory sampled; see tests/soak.rs.
#
#   scripts/soak.sh [CLIENTS] [SECONDS]     (default 500 clients, 300 s)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ulimit -n "$(ulimit -Hn)"
WARDEN_SOAK_CLIENTS=${1:-500} WARDEN_SOAK_SECS=${2:-300} \
  cargo test --release --locked --test soak -- --nocapture
