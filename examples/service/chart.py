"""Draws results/chart.png from the load driver's per-second CSVs:
p99 latency and database queries per second over the run, with and
without the cache. Usage: python3 chart.py cached.csv uncached.csv out.png"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[0]["label"] if rows else path, rows


def main(cached, uncached, out):
    fig, (lat, db) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for path in (cached, uncached):
        label, rows = read(path)
        t = [int(r["second"]) for r in rows]
        lat.plot(t, [int(r["p99_us"]) / 1000 for r in rows], label=f"{label} p99")
        lat.plot(t, [int(r["p50_us"]) / 1000 for r in rows], "--", label=f"{label} p50")
        db.plot(t, [int(r["db_queries"]) for r in rows], label=label)
    lat.set_ylabel("latency (ms)")
    lat.set_yscale("log")
    lat.legend()
    db.set_ylabel("database queries / s")
    db.set_xlabel("second of the run")
    db.legend()
    fig.suptitle("product service under load: with and without cachewright")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main(*sys.argv[1:4])
