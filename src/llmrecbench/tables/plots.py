"""Figures drawn from merged tables (never from raw cells)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from llmrecbench.io import atomic_path


def tradeoff_plot(table: pl.DataFrame, dest: str | Path, metric: str = "NDCG@10", latency: str = "latency_ms", unit: str = "test user") -> None:
    """Accuracy against scoring latency per sample, one point per table row (RecBench's trade-off).

    x = mean latency per ``unit`` (test user or test pair, as the task declares) in ms (log scale), y = mean ``metric`` over seeds, error bars
    = std over seeds; each point's label names the batch size and device of its measurement. Rows without a latency or a metric (N/A cells) are left out and listed in
    the figure's footnote.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label = pl.concat_str(
        [pl.col("dataset"), pl.lit("/"), pl.col("model"), pl.lit(" ("), pl.col("item_repr"), pl.lit(", "), pl.col("setting"), pl.lit(")")]
    )
    cols = table.with_columns(label.alias("label"))
    if "latency_batch" in cols.columns:  # where each latency was measured: batch size and device
        device = pl.col("latency_device") if "latency_device" in cols.columns else pl.lit("?")
        where = pl.concat_str([pl.lit(" [b="), pl.col("latency_batch").cast(pl.Int64).cast(pl.String), pl.lit(", "), device, pl.lit("]")])
        cols = cols.with_columns(pl.when(pl.col("latency_batch").is_not_null()).then(pl.col("label") + where)
                                 .otherwise(pl.col("label")).alias("label"))
    has_latency = latency in cols.columns
    ok = cols.filter(pl.col(metric).is_not_null() & (pl.col(latency).is_not_null() if has_latency else pl.lit(False)))
    missing = cols.filter(~pl.col("label").is_in(ok["label"].implode()))["label"].to_list()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for row in ok.iter_rows(named=True):
        ax.errorbar(row[latency], row[metric], yerr=row.get(f"{metric}_std") or 0.0, fmt="o", capsize=3)
        ax.annotate(row["label"], (row[latency], row[metric]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(f"scoring latency per {unit} (ms, log scale)")
    ax.set_ylabel(f"{metric} (mean over seeds)")
    ax.set_title(f"Accuracy vs latency ({metric})")
    ax.grid(True, which="both", alpha=0.3)
    if missing:
        fig.text(0.01, 0.01, "not plotted (no metric or latency): " + ", ".join(missing), fontsize=7)
    fig.tight_layout()
    with atomic_path(dest, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
