#!/usr/bin/env bash
# What a call of commerce_set_line_batch (migration 0013) costs for its
# size: one call with 1, 2, 4, 8 and 16 requests (new lines on random
# carts, distinct random SKUs), beside a bare round trip, a call of
# commerce_set_line, and calls of 1, 4 and 8 requests of the sketch with
# fewer statements (batch_in_one_statement.sql), each CALLS times from one
# client, ROUNDS times in turn. Prints calls a second and the busy CPU
# time of the whole machine per call (/proc/stat: the server, pgbench and
# the kernel; run it with nothing else busy): the slope over the sizes is
# a request's share, the intercept what a call costs before any request.
# Needs psql and pgbench. Creates (and first drops) the database
# commerce_pgbench_batch, and the login role commerce_pgbench, on the
# server at PGHOST (127.0.0.1), as PGUSER (postgres).
set -euo pipefail
cd "$(dirname "$0")"
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres}
calls=${CALLS:-2000}
rounds=${ROUNDS:-2}
db=commerce_pgbench_batch
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=common.sh
. ./common.sh
fresh_database "$db" batch_in_one_statement.sql
echo "SELECT set_config('synchronous_commit', 'off', true), 1;" > "$work/round_trip.sql"
cp set_line.sql "$work/set_line.sql"
for n in 1 2 4 8 16; do
    # n requests on random carts and distinct random SKUs (a drawn SKU
    # twice makes the call one request shorter).
    cat > "$work/batch_$n.sql" <<SQL
SELECT set_config('synchronous_commit', 'off', true), count(*)
FROM (SELECT array_agg('SKU-' || x.s) AS skus,
             array_agg(('00000000-0000-7000-8000-' || lpad(to_hex(x.c), 12, '0'))::uuid) AS carts
      FROM (SELECT DISTINCT ON (s) s, c
            FROM (SELECT (1 + floor(random() * 10000))::int AS s,
                         (1 + floor(random() * 400000))::int AS c
                  FROM generate_series(1, $n)) AS y) AS x) AS a,
LATERAL commerce_set_line_batch('t', a.skus, a.carts,
    array_fill(1, ARRAY[cardinality(a.skus)]), array_fill(100, ARRAY[cardinality(a.skus)]),
    array_fill(1000, ARRAY[cardinality(a.skus)]),
    array_fill(now() + interval '15 min', ARRAY[cardinality(a.skus)]),
    array_fill(now(), ARRAY[cardinality(a.skus)]),
    array_fill('"2026-12-07T00:00:01Z"'::jsonb, ARRAY[cardinality(a.skus)])) AS b;
SQL
done
for n in 1 4 8; do
    sed 's/commerce_set_line_batch(/commerce_set_line_batch_in_one_statement(/' \
        "$work/batch_$n.sql" > "$work/one_statement_$n.sql"
done
scripts="round_trip set_line batch_1 batch_2 batch_4 batch_8 batch_16 one_statement_1 one_statement_4 one_statement_8"
# A first pass of each, not reported: the first calls read the tables'
# pages from disk.
for script in $scripts; do
    pgbench -n -M prepared -U commerce_pgbench -t 200 -c 1 -j 1 -f "$work/$script.sql" "$db" >/dev/null
done
for round in $(seq 1 "$rounds"); do
    for script in $scripts; do
        echo "round $round, $script: $(calls_and_busy_time "$db" "$work/$script.sql" "$calls" 1)"
    done
done
