"""Compares perf results with a baseline, like TensorRT-LLM's sanity_perf_check.py.

Usage: sanity_perf_check.py <target.csv> <base.csv>
A metric regresses when it is worse than the baseline by more than both the
relative threshold and the absolute threshold; a positive threshold means lower
is better. Exit code 1 on a regression, 0 otherwise.
"""
import csv
import os
import sys

KEY = ("perf_case_name", "metric_type")


def load(path):
    with open(path, newline="") as f:
        return {tuple(row[k] for k in KEY): row for row in csv.DictReader(f)}


def main(target_path, base_path):
    if not os.path.exists(base_path):
        print(f"{base_path} doesn't exist, skip check the perf result.")
        return 0
    target, base = load(target_path), load(base_path)
    regressions = 0
    for key, row in target.items():
        if key not in base:
            continue
        b = float(base[key]["perf_metric"])
        t = float(row["perf_metric"])
        if b == t:
            continue
        print(f"perf_case_name: {key[0]}, base->target: {b}->{t}")
        threshold = float(base[key]["threshold"])
        absolute = float(base[key]["absolute_threshold"])
        worse = t - b if threshold > 0 else b - t
        if worse > abs(threshold) / 100 * abs(b) and worse > absolute:
            print(f"REGRESSION: {key[0]} {key[1]} is worse than the baseline")
            regressions += 1
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
