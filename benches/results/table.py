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


def number(value):
    if value is None:
        return ""
    return f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def share(value):
    return "" if value is None else f"{value:.0%}"


# Runs since 2026-12-08 carry the CPU time per operation as well.
cpu = any("busy_us_per_op" in s for s in run["scenarios"])
header = (
    "| store | benchmark | SKUs | tasks | ops/s | ratio to `pg_limit` "
    "| ratio to `pg_limit_async_commit` | p50 µs | p99 µs |"
)
rule = "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
if cpu:
    header += " busy µs/op | bench's own µs/op | idle |"
    rule += " ---: | ---: | ---: |"
print(header)
print(rule)
for s in run["scenarios"]:
    row = (
        f"| {s['store']} | `{s['benchmark']}` | {s['skus']:,} | {s['tasks']} "
        f"| {s['ops_per_sec']:,.0f} | {ratio(s['ratio_to_limit'])} "
        f"| {ratio(s.get('ratio_to_async_commit_limit'))} "
        f"| {s['p50_us']:,} | {s['p99_us']:,} |"
    )
    if cpu:
        row += (
            f" {number(s.get('busy_us_per_op'))} "
            f"| {number(s.get('bench_process_us_per_op'))} "
            f"| {share(s.get('idle_share'))} |"
        )
    print(row)
