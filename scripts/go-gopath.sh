# Sourced by the scripts that build a Go test helper from Debian's Go
# packages in GOPATH mode (no module proxy here): jwtgen.sh, sysdecode.sh.
# Installs the Debian packages named in PKGS that are missing, then sets up
# Go's environment with WORK as the helper's own GOPATH entry and cache.
# Expects ROOT, WORK and PKGS; `go_build NAME` builds tests/NAME into
# WORK/NAME (when main.go is newer) and prints its path.
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "$(basename "$0"): installing ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export GO111MODULE=off GOFLAGS= GOTOOLCHAIN=local
export GOPATH="/usr/share/gocode:${WORK}/.gopath"
export GOCACHE="${GOCACHE:-${WORK}/.gocache}"
mkdir -p "${WORK}/.gopath"

go_build() {
  local src="$ROOT/tests/$1/main.go" out="${WORK}/$1"
  if [[ ! -x "$out" || "$src" -nt "$out" ]]; then
    (cd "$ROOT/tests/$1" && go build -o "$out" .) >&2
  fi
  echo "$out"
}
