"""One table per task from one small JSON per cell.

A cell JSON (``results/{dataset}/{task}/{model}/seed{seed}/metrics.json``) stores its own
identity as fields — dataset, task, model, item_repr, setting, seed, protocol — so merging never
parses a path. Cells that differ only by seed are averaged:

    mean_m = (1/S) * sum_s m_s,   std_m = sqrt( (1/(S-1)) * sum_s (m_s - mean_m)^2 )  (0 when S = 1)

A cell whose ``status`` is ``"n/a"`` has no metrics; its row shows ``N/A`` with the reason.

LLM cells (``rules/llm.smk``) add ``na_rate``: the share of test users whose output could not be
parsed or grounded to an item. A model that ranks the full catalogue (``protocol.ranking ==
"full"``) returns a list for every user, so its N/A rate is 0 by construction and is filled in.

A table with templated LLM rows gets a ``template`` column after ``setting``: the test template
and whether fine-tuning saw it, e.g. ``seq6 (unseen)`` (P5's seen/unseen split; RecSysLLM's
Tables 4–7). Rows without a test template (conventional models) leave it empty.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import polars as pl

from llmrecbench.errors import InputError

KEY_COLUMNS = ("dataset", "model", "item_repr", "setting", "protocol")
METRIC_COLUMNS = ("HR@5", "NDCG@5", "HR@10", "NDCG@10", "HR@20", "NDCG@20", "MRR")
REQUIRED_FIELDS = ("dataset", "task", "model", "item_repr", "setting", "seed", "protocol")


def protocol_label(protocol: dict) -> str:
    """Compact, stable text for the protocol dict (sorted keys), e.g. ``loss=ce; split=loo``."""
    return "; ".join(f"{k}={protocol[k]}" for k in sorted(protocol))


def template_label(protocol: dict) -> str | None:
    """``<eval_template> (seen|unseen)`` for a cell tested on a prompt template, else None."""
    if "eval_template_seen" not in protocol:
        return None
    return f"{protocol.get('eval_template', '?')} ({protocol['eval_template_seen']})"


def read_cells(paths: Iterable[str | Path]) -> list[dict]:
    cells = []
    for path in paths:
        try:
            cell = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(path, f"cannot read cell JSON ({exc})") from exc
        missing = [f for f in REQUIRED_FIELDS if f not in cell]
        if missing:
            raise InputError(path, f"cell JSON lacks fields {missing}")
        if cell.get("timing"):
            # wall-clock numbers live beside the deterministic cell, referenced by it
            try:
                timing = json.loads(Path(cell["timing"]).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError(cell["timing"], f"cannot read timing JSON of {path} ({exc})") from exc
            extra = cell.setdefault("extra_columns", {})
            extra["latency_ms"] = timing["latency_ms_per_user"]
            if timing.get("latency_ms_per_user_batch1") is not None:
                extra["latency_ms_batch1"] = timing["latency_ms_per_user_batch1"]
            if timing.get("batch_size") is not None:
                extra["latency_batch"] = float(timing["batch_size"])
            if timing.get("device"):
                cell["latency_device"] = str(timing["device"])
        if cell["protocol"].get("ranking") == "full" and cell.get("status", "ok") == "ok":
            cell.setdefault("extra_columns", {}).setdefault("na_rate", 0.0)
        cells.append(cell)
    return cells


def merge_cells(cells: Sequence[dict], metrics: Sequence[str] = METRIC_COLUMNS) -> pl.DataFrame:
    """Rows = (dataset, model, item_repr, setting, protocol); mean and ``_std`` over seeds.

    Extra numeric columns present in every cell's ``extra_columns`` (e.g. latency, N/A rate)
    are averaged the same way and appended after the metrics.
    """
    rows = []
    extra_names: list[str] = []
    for cell in cells:
        row = {
            "dataset": cell["dataset"],
            "model": cell["model"],
            "item_repr": cell["item_repr"],
            "setting": cell["setting"],
            "protocol": protocol_label(cell["protocol"]),
            "template": template_label(cell["protocol"]),
            "seed": int(cell["seed"]),
            "status": cell.get("status", "ok"),
            "note": cell.get("note", ""),
            "n_users": cell.get("n_users"),
            "n_pairs": cell.get("n_pairs"),
            "latency_device": cell.get("latency_device"),
        }
        for m in metrics:
            row[m] = cell.get("metrics", {}).get(m)
        for name, value in cell.get("extra_columns", {}).items():
            row[name] = value
            if name not in extra_names:
                extra_names.append(name)
        rows.append(row)
    if not rows:
        raise ValueError("no cells to merge")
    value_cols = [*metrics, *extra_names]
    # text tasks count test pairs (n_pairs) beside users; other tables keep their columns as before
    counts = ["n_users", *(["n_pairs"] if any(r["n_pairs"] is not None for r in rows) else [])]
    rows = [{k: v for k, v in r.items() if k != "n_pairs" or "n_pairs" in counts} for r in rows]
    templates = ["template"] if any(r["template"] is not None for r in rows) else []
    df = pl.DataFrame(rows, schema_overrides={**{c: pl.Float64 for c in value_cols}, **{c: pl.Int64 for c in counts}, "latency_device": pl.String, "template": pl.String}, infer_schema_length=None)
    aggs = [
        *[pl.col(c).first().alias(c) for c in templates],
        pl.col("seed").n_unique().alias("n_seeds"),
        *[pl.col(c).first().alias(c) for c in counts],
        pl.col("latency_device").first().alias("latency_device"),
        pl.col("note").first().alias("note"),
    ]
    for c in value_cols:
        aggs.append(pl.col(c).mean().alias(c))
        aggs.append(pl.col(c).std(ddof=1).fill_null(0.0).alias(f"{c}_std"))
    table = df.group_by(list(KEY_COLUMNS), maintain_order=True).agg(aggs)
    devices = ["latency_device"] if df["latency_device"].drop_nulls().len() else []
    ordered = [*KEY_COLUMNS[:4], *templates, *KEY_COLUMNS[4:], "n_seeds", *counts, *value_cols, *[f"{c}_std" for c in value_cols], *devices, "note"]
    table = table.select(ordered).sort(["dataset", "item_repr", "model", "setting"])
    # a group whose metrics are all missing (N/A cells) keeps null metrics and null std
    for c in value_cols:
        table = table.with_columns(
            pl.when(pl.col(c).is_null()).then(None).otherwise(pl.col(f"{c}_std")).alias(f"{c}_std")
        )
    return table


def to_markdown(table: pl.DataFrame, digits: int = 4) -> str:
    """GitHub-flavoured markdown: metrics as ``mean ± std`` (std shown when n_seeds > 1), N/A for nulls."""
    value_cols = [c for c in table.columns if f"{c}_std" in table.columns]
    counts = [c for c in ("n_users", "n_pairs") if c in table.columns]
    keys = [c for c in table.columns if c in (*KEY_COLUMNS, "template")]
    header = [*keys, "n_seeds", *counts, *value_cols, "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.iter_rows(named=True):
        cells = ["" if row[c] is None else str(row[c]) for c in keys] + [str(row["n_seeds"])] + ["" if row.get(c) is None else str(row[c]) for c in counts]
        for c in value_cols:
            v, s = row[c], row[f"{c}_std"]
            if v is None:
                cells.append("N/A")
            elif row["n_seeds"] > 1:
                cells.append(f"{v:.{digits}f} ± {s:.{digits}f}")
            else:
                cells.append(f"{v:.{digits}f}")
        cells.append(row["note"] or "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
