"""A trained cell's learning curve from its ``train_log.json``: validation metric against steps.

With the trainer's ``curve`` (``train.curve_every_steps`` > 0) one row per curve point, else one
row per epoch: optimiser steps so far (``ceil(n_examples / batch_size)`` per epoch), cumulative
minutes (training + validation), the running mean training loss of that epoch and the
validation metrics the trainer monitored. Printed as a Markdown table (the
README's TIGER curve is this output).

    .venv/bin/python benchmarks/learning_curve.py results/beauty/seqrec/tiger_paper/seed42/train_log.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def curve_rows(log: dict) -> list[dict]:
    """Per curve point (or epoch): epoch, steps, minutes, loss and every ``valid_*`` metric."""
    if log.get("curve"):
        return [{"epoch": round(p["epoch"], 2), "steps": int(p["step"]), "minutes": float(p["seconds"]) / 60.0,
                 "loss": float(p["loss"]), **{k[len("valid_"):]: float(v) for k, v in p.items() if k.startswith("valid_")}}
                for p in log["curve"]]
    per_epoch = math.ceil(int(log["n_examples"]) / int(log["config"]["batch_size"]))
    rows, minutes = [], 0.0
    for e in log["epochs"]:
        minutes += float(e["seconds"]) / 60.0
        row = {"epoch": int(e["epoch"]), "steps": per_epoch * int(e["epoch"]), "minutes": minutes, "loss": float(e["loss"])}
        row.update({k[len("valid_"):]: float(v) for k, v in e.items() if k.startswith("valid_")})
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("train_log", type=Path)
    args = ap.parse_args()
    log = json.loads(args.train_log.read_text())
    rows = curve_rows(log)
    if not rows:
        raise SystemExit(f"{args.train_log}: no epochs logged")
    metrics = [k for k in rows[0] if k not in ("epoch", "steps", "minutes", "loss")]
    print("| epoch | steps | minutes | train loss | " + " | ".join(f"valid {m}" for m in metrics) + " |")
    print("| " + " | ".join(["---"] * (4 + len(metrics))) + " |")
    best = int(log.get("best_epoch") or 0)
    for r in rows:
        mark = " (best)" if r["epoch"] == best else ""  # the best epoch's end
        print(f"| {r['epoch']}{mark} | {r['steps']:,} | {r['minutes']:.1f} | {r['loss']:.4f} | "
              + " | ".join(f"{r[m]:.4f}" for m in metrics) + " |")


if __name__ == "__main__":
    main()
