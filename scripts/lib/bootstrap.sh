# Sourced by scripts/test, scripts/demo, scripts/bench, scripts/lab:
# make .venv match pyproject.toml, and install the Debian tools the tests drive.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"

ensure_venv() {
    local stamp="$VENV/.pyproject.sha256"
    local want
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [[ ! -x "$VENV/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        echo "==> setting up $VENV from pyproject.toml" >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
        "$VENV/bin/pip" install --quiet --disable-pip-version-check -e "$ROOT[test]"
        echo "$want" >"$stamp"
    fi
    export PATH="$VENV/bin:$PATH"
}

# Debian packages for the real peers: nc (netcat-openbsd), nft, ping, tcpdump; and chromium,
# the headless browser the viewer's test drives (tests/observe/test_view.py).
ensure_debian_tools() {
    [[ "$(id -u)" == 0 ]] || return 0
    command -v apt-get >/dev/null || return 0
    local missing=()
    command -v nc >/dev/null || missing+=(netcat-openbsd)
    command -v nft >/dev/null || missing+=(nftables)
    command -v ping >/dev/null || missing+=(iputils-ping)
    command -v tcpdump >/dev/null || missing+=(tcpdump)
    command -v curl >/dev/null || missing+=(curl)
    command -v ip >/dev/null || missing+=(iproute2)
    command -v chromium >/dev/null || missing+=(chromium)
    if ((${#missing[@]})); then
        echo "==> installing ${missing[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}
