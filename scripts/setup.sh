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

if [ ! -d node_modules/@nats-io/transport-node ] || [ ! -d node_modules/vitest ]; then
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
