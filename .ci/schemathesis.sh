#!/usr/bin/env bash
# Contract test: schemathesis (PyPI, in a virtualenv) against a live server
# of the three routers (`commerce-http`'s `serve` example), on the in-memory
# store and on PostgreSQL. Fails on any 5xx and on any response that breaks
# the OpenAPI document (status, content type, headers, body schema).
# Usage: .ci/schemathesis.sh  (DATABASE_URL must reach PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${COMMERCE_CACHE:-$HOME/.cache/commerce}"
venv="$cache/venv-schemathesis"
version="4.32.5"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
  if ! python3 -m venv --help >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q python3 python3-venv
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$version"
fi
"$venv/bin/schemathesis" --version

cargo build -p commerce-http --example serve
server="${CARGO_TARGET_DIR:-target}/debug/examples/serve"
work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

run() {
  local name=$1
  shift
  echo "-- schemathesis against the routers on $name"
  "$server" --key-file "$work/key" "$@" >"$work/server.log" 2>&1 &
  pid=$!
  local url=""
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^listening on //p' "$work/server.log")
    [ -n "$url" ] && [ -s "$work/key" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.2
  done
  if [ -z "$url" ]; then
    echo "the server did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  local status=0
  "$venv/bin/schemathesis" run "$url/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --header "Authorization: Bearer $(cat "$work/key")" \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
    --seed "${SCHEMATHESIS_SEED:-20261204}" \
    --request-timeout 10 \
    --warnings off || status=$?
  if [ "$status" != 0 ]; then
    echo "schemathesis failed on $name; the server's log:" >&2
    tail -n 200 "$work/server.log" >&2
    exit "$status"
  fi
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
  rm -f "$work/key"
}

run "the in-memory store"

db=commerce_schemathesis
psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
psql "$DATABASE_URL" -qc "CREATE DATABASE $db"
DATABASE_URL="${DATABASE_URL%/*}/$db" run "PostgreSQL" --postgres
