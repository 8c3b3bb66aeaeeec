#!/usr/bin/env bash
# Installs what Switchboard needs on this machine, then builds it:
#   npm dependencies (when missing), nats-server (via the OS package manager when missing),
#   the TypeScript build (when a source changed since the last one), and the credentials nats.conf requires (data/auth, owner-only; kept
#   when they exist).
# Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }

# Supported: the Node.js versions in package.json's engines. Older ones often still run, but
# dependencies (@nats-io/nuid among them) require 22, and Node.js 20 is past its end of life.
if ! node scripts/check-engines.mjs --running-only >/dev/null 2>&1; then
  say "warning: Node.js $(node --version) is not supported; use Node.js 22 or 24 (see README)"
fi

if [ ! -d node_modules/@nats-io/transport-node ] || [ ! -d node_modules/vitest ] || [ ! -d node_modules/@opentelemetry/api ] || [ ! -d node_modules/@nats-io/services ]; then
  say "installing npm dependencies"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >&2; else npm install --no-audit --no-fund >&2; fi
fi

find_nats() {
  command -v nats-server 2>/dev/null && return 0
  for d in /usr/sbin /usr/local/sbin /usr/local/bin /usr/bin; do
    [ -x "$d/nats-server" ] && { echo "$d/nats-server"; return 0; }
  done
  return 1
}

if ! find_nats >/dev/null; then
  say "nats-server not found; installing it"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      say "cannot install nats-server: not root and no sudo. Install it yourself (apt-get install nats-server, brew install nats-server, or https://nats.io) and run this again."
      exit 1
    fi
  fi
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nats-server >&2
  elif command -v brew >/dev/null 2>&1; then
    brew install nats-server >&2
  else
    say "cannot install nats-server: no apt-get or brew here. Install it yourself (https://nats.io) and run this again."
    exit 1
  fi
  find_nats >/dev/null || { say "nats-server still not found after installing it"; exit 1; }
fi

# nats-server before 2.9.15 can be crashed by any chat user (a reply subject ending in a
# wildcard sends it into endless recursion: nats-io/nats-server#3862), and Debian 12 packages
# 2.9.10. Where the system's is older, fetch Debian 13's package (a static Go build, checked
# against its published SHA-256) into the cache where switchboard looks for it.
SAFE_NATS=2.9.15
MANAGED_NATS="${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/nats-server/nats-server"
DEBIAN_NATS=2.10.27-1+b2
nats_version() { "$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -1; }
older_than() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]; }
download() {
  if command -v curl >/dev/null 2>&1; then curl -fsS --retry 3 -m 300 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then wget -q -T 300 -O "$2" "$1"
  else node -e 'const [url, file] = process.argv.slice(1);
    fetch(url).then(async (r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`); require("fs").writeFileSync(file, Buffer.from(await r.arrayBuffer())); })
      .catch((e) => { console.error(e.message); process.exit(1); });' "$1" "$2"
  fi
}
fetch_safe_nats() {
  local arch sha deb tmp
  arch="$(dpkg --print-architecture 2>/dev/null || true)"
  case "$arch" in
    amd64) sha=6d913ac987b78734c08537c2adeb1526cf735f216173a9170d94b185fcfe6f8a ;;
    arm64) sha=0c9a617510b28c1b4fb4a38aabea6ab8cd7f026247f2abdff8b955b2278ce049 ;;
    *) return 1 ;;
  esac
  command -v dpkg-deb >/dev/null 2>&1 || return 1
  deb="nats-server_${DEBIAN_NATS}_${arch}.deb"
  tmp="$(mktemp -d)"
  if download "http://deb.debian.org/debian/pool/main/n/nats-server/$deb" "$tmp/$deb" \
    && echo "$sha  $tmp/$deb" | sha256sum -c --quiet - \
    && dpkg-deb -x "$tmp/$deb" "$tmp/x" && [ -x "$tmp/x/usr/sbin/nats-server" ]; then
    mkdir -p "$(dirname "$MANAGED_NATS")"
    mv "$tmp/x/usr/sbin/nats-server" "$MANAGED_NATS"
    rm -rf "$tmp"
    return 0
  fi
  rm -rf "$tmp"
  return 1
}
if [ -z "${SB_NATS_SERVER:-}" ]; then
  system_nats="$(find_nats)"
  system_version="$(nats_version "$system_nats")"
  if [ -n "$system_version" ] && older_than "$system_version" "$SAFE_NATS"; then
    managed_version=""
    [ -x "$MANAGED_NATS" ] && managed_version="$(nats_version "$MANAGED_NATS")"
    if [ -n "$managed_version" ] && ! older_than "$managed_version" "$SAFE_NATS"; then
      say "using nats-server $managed_version from $MANAGED_NATS ($system_nats is $system_version, older than $SAFE_NATS)"
    else
      say "$system_nats is nats-server $system_version, which any chat user can crash; fetching nats-server ${DEBIAN_NATS%%-*} (Debian 13's package) into $MANAGED_NATS"
      if fetch_safe_nats; then
        say "using nats-server $(nats_version "$MANAGED_NATS") from $MANAGED_NATS"
      else
        say "warning: could not fetch a newer nats-server; install $SAFE_NATS or newer yourself and set SB_NATS_SERVER to it (see docs/SECURITY.md)"
      fi
    fi
  fi
fi

# Build only when something the build reads changed since the last one: `npm start` should not
# spend a dozen seconds compiling what is already compiled.
stamp=dist/.build-stamp
if [ -f "$stamp" ] && [ -z "$(find src tsconfig.json package.json package-lock.json -newer "$stamp" -print -quit 2>/dev/null)" ]; then
  say "build is up to date"
else
  say "building"
  npx tsc -p . >&2
  touch "$stamp"
fi

# nats.conf includes the generated user list; nats-server refuses to start without it.
node bin/switchboard.js auth init >&2
