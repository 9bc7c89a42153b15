#!/usr/bin/env bash
# The browser tests: the example shops in Debian's Chromium, driven by
# playwright-core under `node --test` (e2e/). Installs what is missing
# (Chromium from Debian's packages, the npm packages from the lockfile),
# builds the shops, runs every e2e/*.test.mjs. Fails, never skips, when
# Chromium, Node 20+ or PostgreSQL cannot be had.
#
#   bash .ci/browser.sh                       # all of it
#   SHOP_BINS="hardware-shop" bash .ci/browser.sh
#   E2E_STORES=memory bash .ci/browser.sh     # without the PostgreSQL runs
#
# Environment: DATABASE_URL (an administrative role; default the local
# server's postgres role), CARGO_TARGET_DIR (default
# $HOME/.cache/commerce/target, as .ci/run), CHROMIUM_PATH (default
# /usr/bin/chromium), SHOP_BINS (default "hardware-shop click-collect apparel":
# every e2e/*.test.mjs runs, so every shop they start), E2E_STORES
# (default "memory,postgres").
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/commerce/target}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
SHOP_BINS="${SHOP_BINS:-hardware-shop click-collect apparel}"
started=$(date +%s)

say() { printf -- '-- [%ss] %s\n' "$(($(date +%s) - started))" "$*"; }
fail() { printf 'browser tests: %s\n' "$*" >&2; exit 1; }

# Chromium: Debian's package (playwright-core downloads no browser).
if [ ! -x "$CHROMIUM_PATH" ]; then
  [ "$CHROMIUM_PATH" = /usr/bin/chromium ] || fail "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable"
  say "Chromium is not installed: installing Debian's chromium"
  command -v apt-get >/dev/null 2>&1 || fail "no /usr/bin/chromium and no apt-get to install it"
  export DEBIAN_FRONTEND=noninteractive
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends chromium fonts-liberation
fi
[ -x "$CHROMIUM_PATH" ] || fail "no Chromium at $CHROMIUM_PATH after installing it"
# Chromium's wrapper script prints noise on some shells; the version line is what counts.
version=$("$CHROMIUM_PATH" --version 2>/dev/null) || fail "$CHROMIUM_PATH --version failed"
say "$version"

# Node 20 or newer (node --test, its --test-concurrency).
command -v node >/dev/null 2>&1 || fail "Node.js is not installed: the browser tests need Node 20 or newer"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "Node $(node --version) is too old: the browser tests need Node 20 or newer"
command -v npm >/dev/null 2>&1 || fail "npm is not installed (it comes with Node.js)"
say "node $(node --version), npm $(npm --version)"

# PostgreSQL: the flows run on it too (each on a database of its own).
command -v psql >/dev/null 2>&1 || fail "psql is not installed: the PostgreSQL runs create their databases with it"
psql "$DATABASE_URL" -XAtqc "SELECT 1" >/dev/null ||
  fail "PostgreSQL is not reachable at DATABASE_URL=$DATABASE_URL (bash .ci/run starts it)"
# The tests' databases (e2e_*): each test drops its own, best effort;
# these are what runs that died or could not drop left.
# A database something is connected to belongs to a run still going (another
# checkout's, say): it is left alone.
drop_test_databases() {
  psql "$DATABASE_URL" -XAtqc "SELECT datname FROM pg_database d WHERE datname LIKE 'e2e\\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)" |
    while read -r db; do psql "$DATABASE_URL" -Xqc "DROP DATABASE IF EXISTS \"$db\"" || true; done
}
drop_test_databases

# The npm packages, exactly as locked; again only when the lockfile changed.
lock_hash=$(sha256sum e2e/package-lock.json | cut -d' ' -f1)
stamp=e2e/node_modules/.lock-hash
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_hash" ]; then
  say "npm packages up to date with e2e/package-lock.json"
else
  say "npm ci --ignore-scripts --prefix e2e"
  npm ci --ignore-scripts --no-audit --no-fund --prefix e2e
  echo "$lock_hash" >"$stamp"
fi

# The shops.
packages=()
for bin in $SHOP_BINS; do packages+=(-p "$bin"); done
say "cargo build ${packages[*]}"
cargo build "${packages[@]}"
export SHOP_BIN_DIR="$CARGO_TARGET_DIR/debug"
for bin in $SHOP_BINS; do
  [ -x "$SHOP_BIN_DIR/$bin" ] || fail "cargo built no $SHOP_BIN_DIR/$bin"
done

rm -rf e2e/artifacts
say "node --test --test-concurrency=1 e2e/"
status=0
node --test --test-concurrency=1 e2e/ || status=$?
drop_test_databases || echo "browser tests: could not drop every e2e_* database" >&2
say "browser tests took $(($(date +%s) - started)) s"
if [ "$status" != 0 ]; then
  if [ -d e2e/artifacts ]; then
    echo "screenshots and logs of the failed tests, in e2e/artifacts:" >&2
    ls -1 e2e/artifacts >&2
    # CI keeps no files: the logs go to the output too.
    for log in e2e/artifacts/*.log; do
      [ -f "$log" ] || continue
      printf '\n==== %s\n' "$log" >&2
      tail -n 200 "$log" >&2
    done
  fi
  exit "$status"
fi
