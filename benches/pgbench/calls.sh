#!/usr/bin/env bash
# What a reservation alone costs with migration 0015's commerce_set_line
# beside 0009's: a database migrated up to 0014 keeps the old function as
# commerce_set_line_0014, then 0015 adds the new one. set_line.sql (one
# reservation on a random cart and SKU) runs ROUNDS times in turn against
# its _0014 twin, CALLS calls each from CLIENTS clients (1 by default),
# and prints the calls a second and the busy CPU time of the whole machine
# per call
# (/proc/stat: the server, pgbench and the kernel; run it with nothing
# else busy). Needs psql and pgbench. Creates (and first drops) the
# database commerce_pgbench_calls, and the login role commerce_pgbench, on
# the server at PGHOST (127.0.0.1), as PGUSER (postgres).
set -euo pipefail
cd "$(dirname "$0")"
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres}
clients=${CLIENTS:-1}
calls=${CALLS:-4000}
rounds=${ROUNDS:-5}
db=commerce_pgbench_calls
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=common.sh
. ./common.sh
# The version of commerce_set_line before 0015 stays, renamed.
before_migration() {
    case "$2" in
        0015_*)
            psql -q -v ON_ERROR_STOP=1 -d "$1" \
                -c "ALTER FUNCTION commerce_set_line RENAME TO commerce_set_line_0014"
            ;;
    esac
}
fresh_database "$db"
cp set_line.sql "$work/set_line.sql"
sed "s/FROM commerce_set_line(/FROM commerce_set_line_0014(/" set_line.sql > "$work/set_line_0014.sql"
# A first pass of each, not reported: the first calls read the tables'
# pages from disk.
for script in set_line_0014 set_line; do
    pgbench -n -M prepared -U commerce_pgbench -t 500 -c "$clients" -j "$clients" \
        -f "$work/$script.sql" "$db" >/dev/null
done
for round in $(seq 1 "$rounds"); do
    for script in set_line_0014 set_line; do
        echo "round $round, $clients clients, $script: $(calls_and_busy_time "$db" "$work/$script.sql" "$calls" "$clients")"
    done
done
