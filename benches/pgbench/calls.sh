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
psql -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
for migration in ../../commerce-postgres/migrations/*.sql; do
    case "$(basename "$migration")" in
        0015_*)
            psql -q -v ON_ERROR_STOP=1 -d "$db" \
                -c "ALTER FUNCTION commerce_set_line RENAME TO commerce_set_line_0014"
            ;;
    esac
    psql -q -v ON_ERROR_STOP=1 -d "$db" -f "$migration" >/dev/null
done
psql -q -v ON_ERROR_STOP=1 -d "$db" -f fixture.sql
psql -q -v ON_ERROR_STOP=1 -d "$db" -c "VACUUM ANALYZE"
cp set_line.sql "$work/set_line.sql"
sed "s/FROM commerce_set_line(/FROM commerce_set_line_0014(/" set_line.sql > "$work/set_line_0014.sql"
# The busy time of the machine (every field of /proc/stat's cpu line but
# idle and iowait), in clock ticks.
busy() {
    awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}
run() {
    local script=$1 before after tps
    before=$(busy)
    tps=$(pgbench -n -M prepared -U commerce_pgbench -t "$calls" -c "$clients" -j "$clients" \
        -f "$work/$script.sql" "$db" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    after=$(busy)
    echo "$script: ${tps%.*} calls a second, $(( (after - before) * 1000000 / $(getconf CLK_TCK) / (calls * clients) )) µs busy per call"
}
# A first pass of each, not reported: the first calls read the tables'
# pages from disk.
for script in set_line_0014 set_line; do
    pgbench -n -M prepared -U commerce_pgbench -t 500 -c "$clients" -j "$clients" \
        -f "$work/$script.sql" "$db" >/dev/null
done
for round in $(seq 1 "$rounds"); do
    for script in set_line_0014 set_line; do
        echo "round $round, $clients clients, $(run "$script")"
    done
done
