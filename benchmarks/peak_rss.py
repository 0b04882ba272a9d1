"""Peak memory of a finished DAG, from the rules' ``benchmark:`` files.

Snakemake writes one TSV per job (``results/benchmarks/...``) with ``max_rss`` in MiB: the peak
resident set of the job's process tree. Jobs run side by side with ``--cores N > 1``, so the
machine's peak can exceed any one job's; with one job at a time (the 2-core main command runs its
2-thread training jobs one by one) the largest job is the peak. Prints the ``--top`` largest jobs,
the largest overall against ``--limit`` (GiB; issue 13's bar is 4), and exits 1 above it.

    .venv/bin/python benchmarks/peak_rss.py [--root results/benchmarks] [--limit 4]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def peaks(root: Path) -> list[tuple[float, Path]]:
    """``(max_rss MiB, file)`` of every benchmark TSV under ``root``, largest first."""
    out = []
    for path in sorted(root.rglob("*.tsv")):
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        values = [float(r["max_rss"]) for r in rows if r.get("max_rss") not in (None, "", "NA", "-")]
        if values:
            out.append((max(values), path))
    return sorted(out, key=lambda t: -t[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("results/benchmarks"))
    ap.add_argument("--limit", type=float, default=4.0, help="GiB")
    ap.add_argument("--top", type=int, default=5)
    args = ap.parse_args(argv)
    found = peaks(args.root)
    if not found:
        print(f"{args.root}: no benchmark files with max_rss", file=sys.stderr)
        return 2
    for mib, path in found[: args.top]:
        print(f"{mib / 1024:6.2f} GiB  {path.relative_to(args.root)}")
    top = found[0][0] / 1024
    print(f"peak RSS of the largest of {len(found)} jobs: {top:.2f} GiB (limit {args.limit:g} GiB): {'ok' if top <= args.limit else 'OVER'}")
    return 0 if top <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
