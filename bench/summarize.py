#!/usr/bin/env python3
"""Summarizes bench/run's rounds: median [min-max] of each figure, and the
ratios varscope/echo, varscope/Redis, varscope/iperf3 and varscope/(varscope
over gRPC only) computed within each round (then median [min-max] of those),
as Markdown tables. "varscope" uses same-host shared memory (the client's
default); "over gRPC" is the same daemon with the client's shared memory off.

Usage: summarize.py round1.txt round2.txt ... [storm.txt]   (lines of "key value")
"""
import os
import re
import statistics
import sys


def load(path):
    figures = {}
    for line in open(path):
        parts = line.split()
        if len(parts) == 2:
            try:
                figures[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return figures


def spread(values):
    if not values:
        return "-"
    med = statistics.median(values)
    fmt = "{:.2f}" if med < 10 else "{:.0f}"
    return f"{fmt.format(med)} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def ratios(rounds, key, base_key):
    return [r[key] / r[base_key] for r in rounds if r.get(key) and r.get(base_key)]


def size_name(size):
    size = int(size)
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"


def storms(figures):
    print("\n### Push storms (4 clients, one fresh daemon each; MiB)\n")
    print("| storm | stored | RSS empty | RSS peak | RSS settled | settled - empty | /stored |")
    print("|---|---|---|---|---|---|---|")
    for k in sorted(figures):
        m = re.fullmatch(r"storm_(\w+?)_(\d+)_stored_mib", k)
        if not m:
            continue
        tag = f"storm_{m.group(1)}_{m.group(2)}"
        stored = figures[k]
        empty = figures.get(f"{tag}_rss_empty_mib", 0)
        settled = figures.get(f"{tag}_rss_settled_mib", 0)
        print(f"| {m.group(1)} {size_name(m.group(2))} | {stored:.0f} | {empty:.0f} | "
              f"{figures.get(tag + '_rss_peak_mib', 0):.0f} | {settled:.0f} | "
              f"{settled - empty:.0f} | **{(settled - empty) / stored:.2f}** |")


def main(paths):
    storm_paths = [p for p in paths if os.path.basename(p).startswith("storm")]
    rounds = [load(p) for p in paths if p not in storm_paths]
    keys = sorted({k for r in rounds for k in r})
    print(f"### Transfers (MiB/s; median [min-max] of {len(rounds)} rounds)\n")
    print("| op | size | clients | varscope | over gRPC | echo | Redis | /echo | /Redis "
          "| /iperf3 | /over gRPC |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    cells = []
    for k in keys:
        m = re.fullmatch(r"warm_varscope_(push|pull)_(\d+)_c(\d+)_mib_per_s", k)
        if m:
            cells.append((m.group(1), int(m.group(2)), int(m.group(3)), "warm"))
        m = re.fullmatch(r"cold_varscope_(push|pull)_(\d+)_mib_per_s", k)
        if m:
            cells.append((m.group(1), int(m.group(2)), 1, "cold"))
    for op, size, n, kind in sorted(cells, key=lambda c: (c[3] != "warm", c[0], c[1], c[2])):
        suffix = f"_c{n}_mib_per_s" if kind == "warm" else "_mib_per_s"
        key = {s: f"{kind}_{s}_{op}_{size}{suffix}"
               for s in ("varscope", "varscope_grpc", "echo", "redis")}
        vals = {s: [r[key[s]] for r in rounds if key[s] in r] for s in key}
        wire = (spread(ratios(rounds, key["varscope"], "iperf3_single_stream_mib_per_s"))
                if size >= 16 << 20 else "")
        print(f"| {op} ({kind}) | {size_name(size)} | {n} | {spread(vals['varscope'])} | "
              f"{spread(vals['varscope_grpc'])} | "
              f"{spread(vals['echo'])} | {spread(vals['redis'])} | "
              f"**{spread(ratios(rounds, key['varscope'], key['echo']))}** | "
              f"**{spread(ratios(rounds, key['varscope'], key['redis']))}** | {wire} | "
              f"{spread(ratios(rounds, key['varscope'], key['varscope_grpc']))} |")

    print("\n### Calls and memory (median [min-max])\n")
    print("| figure | value | ratio |")
    print("|---|---|---|")
    pairs = {
        "getvariable_64_calls_per_s": "echo_small_64_calls_per_s",
        "getvariable_64_server_cpu_us_per_call": "echo_small_64_server_cpu_us_per_call",
        "getvariable_1_calls_per_s": "echo_small_1_calls_per_s",
        "rss_at_rest_mib": "stored_mib",
        "rss_peak_during_pulls_mib": "stored_mib",
    }
    for k in keys:
        if k.startswith(("warm_", "cold_")):
            continue
        vals = [r[k] for r in rounds if k in r]
        ratio = ""
        if k in pairs:
            ratio = f"/{pairs[k]}: **{spread(ratios(rounds, k, pairs[k]))}**"
        print(f"| {k} | {spread(vals)} | {ratio} |")
    for p in storm_paths:
        storms(load(p))


if __name__ == "__main__":
    main(sys.argv[1:])
