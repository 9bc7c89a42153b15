#!/usr/bin/env bash
# The book: builds with mdBook (a warning fails), its Rust blocks are only
# samples included from the compiled `commerce-book` crate (book/samples,
# run by the README's test command), and its internal links and includes
# resolve.
set -euo pipefail
cd "$(dirname "$0")/.."

root="${COMMERCE_TOOLS_ROOT:-$HOME/.cache/commerce/cargo-root}"
export PATH="$root/bin:$PATH"
if ! command -v mdbook >/dev/null 2>&1; then
  echo "mdbook is not installed: cargo install --locked mdbook into $root"
  CARGO_TARGET_DIR="$HOME/.cache/commerce/cargo-install-target" \
    cargo install --locked mdbook --version '^0.4' --root "$root"
fi
mdbook --version

python3 .ci/book_check.py book

log=$(mktemp)
mdbook build book 2>&1 | tee "$log"
if grep -Eq '\b(WARN|ERROR)\b' "$log"; then
  echo "mdbook reported warnings or errors (above)" >&2
  exit 1
fi
test -f book/build/index.html
echo "book built: book/build/index.html"
