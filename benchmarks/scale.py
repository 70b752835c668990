"""Benchmark: how the nightly path's cost grows with the events table (1M, 10M, 100M events).

Each size runs ``benchmarks/nightly.py`` in its own process (fresh JVM, ``local[2]``, an explicit
``--driver-memory``): generate the table over ``--days`` days, discretize + window the history
nights, train the demo model, then time ``nightly`` for the last night. Prints one row per size:
wall time per nightly stage, preparation times, peak RSS of the process tree (JVM + Python
workers) and the ratio of each cost to the smallest size's.

Sizes measured earlier (``benchmarks/results/scale.json``) are kept and printed with the new ones,
so a long size can run on its own later (``--fresh`` forgets them).

Usage: ``python benchmarks/scale.py [--sizes 1e6,1e7,1e8] [--days 3] [--entities 5000]
[--driver-memory 4g] [--generator spark|adspark]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = ("discretize", "window", "score")  # score includes the interval MERGE


def run_size(events: int, args: argparse.Namespace, out: Path) -> dict:
    """Figures of one size (from ``benchmarks/nightly.py --json``)."""
    cmd = [sys.executable, str(HERE / "nightly.py"), "--events", str(events), "--days", str(args.days),
           "--entities", str(args.entities), "--driver-memory", args.driver_memory,
           "--epochs", str(args.epochs), "--generator", args.generator, "--json", str(out)]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7,1e8", help="comma-separated event counts")
    parser.add_argument("--days", type=int, default=3, help="nights in the table (the last is timed)")
    parser.add_argument("--entities", type=int, default=5000)
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--generator", choices=("adspark", "spark"), default="spark",
                        help="spark: plain Spark expressions (fast at 100M); adspark: the generate job")
    parser.add_argument("--fresh", action="store_true", help="forget earlier sizes in results/scale.json")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    saved = HERE / "results" / "scale.json"
    by_size = {} if args.fresh or not saved.exists() else {r["events"]: r for r in json.loads(saved.read_text())}
    with tempfile.TemporaryDirectory(prefix="adspark-scale-") as tmp:
        for n in sizes:
            by_size[n] = run_size(n, args, Path(tmp) / f"{n}.json")
            saved.parent.mkdir(exist_ok=True)
            saved.write_text(json.dumps([by_size[k] for k in sorted(by_size)], indent=2))
    results = [by_size[k] for k in sorted(by_size)]
    base = results[0]
    print(f"\nnightly path vs events table size; {args.entities} users, {args.days} nights, local[2], "
          f"driver memory {args.driver_memory}")
    print("| events | night events | windows | " + " | ".join(f"{s} s" for s in STAGES)
          + " | nightly s | x smallest | peak RSS nightly GiB | peak RSS run GiB | generate s | history s | train s |")
    print("|" + "---|" * (10 + len(STAGES)))
    for r in results:
        st = r["stage_seconds"]
        prep = r["prep_seconds"]
        peak = r["peak_rss_bytes"]
        print(f"| {r['events']:,} | {r['night_events']:,} | {r['windows']:,} | "
              + " | ".join(f"{st.get(s, 0.0):.1f}" for s in STAGES)
              + f" | {st['total']:.1f} | {st['total'] / base['stage_seconds']['total']:.2f}x"
              f" | {peak['nightly'] / 2**30:.2f} | {max(peak.values()) / 2**30:.2f}"
              f" | {prep['generate']:.0f} | {prep['discretize history'] + prep['window history']:.0f}"
              f" | {prep['train']:.0f} |")


if __name__ == "__main__":
    main()
