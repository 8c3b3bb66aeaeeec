#!/usr/bin/env bash
# Fails when src/gen does not match what `buf generate` makes from schemas/.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r src/gen "$tmp/before"
npx buf lint
npx buf generate
if ! diff -r "$tmp/before" src/gen >/dev/null; then
  diff -r "$tmp/before" src/gen || true
  echo "check-generated: src/gen is out of date with schemas/; run \`npm run gen\` and commit the result" >&2
  exit 1
fi
echo "check-generated: src/gen matches schemas/"
