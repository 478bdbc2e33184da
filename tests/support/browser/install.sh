#!/usr/bin/env bash
# Installs what the browser tests need: Debian's chromium and playwright-core (which never downloads a browser).
# Idempotent; prints one line on success.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

fail() {
    echo "browser install: $1 failed:" >&2
    cat "$log" >&2
    exit 1
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "$@" >"$log" 2>&1; then
        apt-get update >"$log" 2>&1 || fail "apt-get update"
        apt-get install -y --no-install-recommends "$@" >"$log" 2>&1 || fail "apt-get install $*"
    fi
}

if [[ ! -x /usr/bin/chromium ]]; then
    apt_install chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi

want="$(node -p "require('$here/package.json').dependencies['playwright-core']")"
have="$(node -p "try { require('$here/node_modules/playwright-core/package.json').version } catch (e) { '' }")"
if [[ "$have" != "$want" ]]; then
    cd "$here"
    export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
    if [[ -f package-lock.json ]]; then
        npm ci --no-progress >"$log" 2>&1 || fail "npm ci"
    else
        npm install --no-progress >"$log" 2>&1 || fail "npm install"
    fi
fi
echo "browser install: chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), playwright-core $want"
