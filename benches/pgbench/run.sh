#!/usr/bin/env bash
# What a granted reservation costs the server, beside the limit's update:
# commerce_set_line as the store calls it, and the sketch of a hold carried
# by the cart line (hold_on_line.sql), with and without the cart's clock.
# After a first pass of each, the scripts run twice in turn, 8 s each, with
# CLIENTS clients (8 by default: the two cores busy, so each call's CPU
# decides). Needs psql and pgbench. Creates (and first drops) the database
# commerce_pgbench, and the login role commerce_pgbench (a member of
# commerce_app), on the server at PGHOST (127.0.0.1), as PGUSER (postgres).
set -euo pipefail
cd "$(dirname "$0")"
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres}
clients=${CLIENTS:-8}
db=commerce_pgbench
# shellcheck source=common.sh
. ./common.sh
fresh_database "$db" hold_on_line.sql
# A first pass of each script, not reported: the first calls read the
# tables' pages from disk and log whole pages after the checkpoint.
for script in limit set_line hold_on_line_call hold_on_line_clock_call; do
    pgbench -n -M prepared -U commerce_pgbench -T 4 -c "$clients" -j "$clients" \
        -f "$script.sql" "$db" >/dev/null
done
for round in 1 2; do
    for script in limit set_line hold_on_line_call hold_on_line_clock_call; do
        tps=$(pgbench -n -M prepared -U commerce_pgbench -T 8 -c "$clients" -j "$clients" \
            -f "$script.sql" "$db" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
        echo "round $round, $clients clients, $script: $tps per second"
    done
done
