#!/usr/bin/env python3
"""Print benches/results/reservation.json as the Markdown table benches/README.md quotes.

Usage: python3 benches/results/table.py [path/to/reservation.json]
"""
import json
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "benches/results/reservation.json"
with open(path) as f:
    run = json.load(f)

print(f"Run of {run['date']} on {run['machine']}.")
print(f"Command: `{run['command']}`.")
print()


def ratio(value):
    return "" if value is None else f"{value:.2f}"


print(
    "| store | benchmark | SKUs | tasks | ops/s | ratio to `pg_limit` "
    "| ratio to `pg_limit_async_commit` | p50 µs | p99 µs |"
)
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for s in run["scenarios"]:
    print(
        f"| {s['store']} | `{s['benchmark']}` | {s['skus']:,} | {s['tasks']} "
        f"| {s['ops_per_sec']:,.0f} | {ratio(s['ratio_to_limit'])} "
        f"| {ratio(s.get('ratio_to_async_commit_limit'))} "
        f"| {s['p50_us']:,} | {s['p99_us']:,} |"
    )
