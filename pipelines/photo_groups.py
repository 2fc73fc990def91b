"""Summarise ``photos.csv`` (written by ``pipelines/evaluate.py``) by group of photos.

    python pipelines/photo_groups.py runs/eval/photos.csv

A photo's group is its file name up to the last ``__`` (the shared data names files
``<source>__<subset>__<name>``); names without ``__`` form the group ``(other)``. Prints, per
group, the CIEDE2000 ratio to grey and the colourfulness ratio to the truth (ratios of means, as
the evaluation's own totals).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path


def group_of(name: str) -> str:
    return name.rsplit("__", 1)[0] if "__" in name else "(other)"


def summarize(path: Path) -> list[dict]:
    """Per group: ``n``, ``ciede2000_ratio_vs_grey``, ``colorfulness_ratio`` (sorted by group)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            groups[group_of(row["file"])].append(row)
    out = []
    for name, rows in sorted(groups.items()):
        t = {k: sum(float(r[k]) for r in rows) for k in rows[0] if k != "file"}
        out.append({
            "group": name,
            "n": len(rows),
            "ciede2000_ratio_vs_grey": t["ciede2000"] / t["ciede2000_grey"],
            "colorfulness_ratio": t["colorfulness"] / t["colorfulness_truth"],
        })
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", type=Path)
    args = ap.parse_args(argv)
    print("| group | photos | CIEDE2000 / grey | colourfulness / truth |")
    print("|---|---|---|---|")
    for g in summarize(args.csv):
        print(f"| {g['group']} | {g['n']} | {g['ciede2000_ratio_vs_grey']:.3f}x | {g['colorfulness_ratio']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
