#!/usr/bin/env python3
"""Prints criterion medians of one bench group and their ratios to a baseline
measured in the same run, from target/criterion/<group>/*/new/estimates.json.

    python3 scripts/criterion_ratios.py hot_hit_plain floor
    python3 scripts/criterion_ratios.py hot_hit_plain floor_async/poll_noop
"""
import json, os, sys

group, base = sys.argv[1], sys.argv[2].replace("/", "_")
root = os.path.join("target", "criterion", group)
medians = {}
for dirpath, _, files in os.walk(root):
    if dirpath.endswith(os.path.join("new")) and "estimates.json" in files:
        name = os.path.relpath(os.path.dirname(dirpath), root)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            e = json.load(f)["median"]
        medians[name] = (e["point_estimate"], e["confidence_interval"]["lower_bound"], e["confidence_interval"]["upper_bound"])
if base not in medians:
    sys.exit(f"no baseline {base!r} in {sorted(medians)}")
b = medians[base][0]
for name in sorted(medians):
    m, lo, hi = medians[name]
    print(f"{group}/{name:32} median {m:8.2f} ns  (95% CI {lo:.2f}-{hi:.2f})  {m / b:5.2f}x {base}")
