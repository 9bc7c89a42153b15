#!/usr/bin/env bash
# The core's public API names no adapter type. Two checks:
#   1. commerce-core depends on no adapter crate (a type it cannot see, it
#      cannot name), with every feature on;
#   2. its generated documentation (the public API as rustdoc renders it)
#      names no adapter crate's path.
# Run after `cargo doc -p commerce-core --all-features`.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

adapters='sqlx.*|axum.*|tower.*|hyper.*|reqwest.*|async-stripe.*|commerce-(postgres|stripe|http)|testcontainers.*'
deps=$(cargo tree -p commerce-core --all-features -e normal,build --prefix none --format '{p}' |
  awk '{print $1}' | sort -u)
bad=$(printf '%s\n' "$deps" | grep -Ex "$adapters" || true)
if [ -n "$bad" ]; then
  echo "commerce-core depends on adapter crates:" >&2
  printf '%s\n' "$bad" >&2
  exit 1
fi
echo "commerce-core depends on $(printf '%s\n' "$deps" | wc -l) crates, none an adapter"

docs="$target/doc/commerce_core"
if [ ! -d "$docs" ]; then
  echo "no documentation at $docs: run cargo doc -p commerce-core --all-features first" >&2
  exit 1
fi
paths='\b(sqlx|axum|tower|tower_http|hyper|reqwest|async_stripe|stripe|commerce_postgres|commerce_stripe|commerce_http)::'
named=$(grep -rlE "$paths" "$docs" || true)
if [ -n "$named" ]; then
  echo "commerce-core's public API documentation names adapter types:" >&2
  grep -rnoE "$paths[A-Za-z_:]*" "$docs" | head -20 >&2
  exit 1
fi
echo "commerce-core's public API ($(find "$docs" -name '*.html' | wc -l) pages) names no adapter type"
