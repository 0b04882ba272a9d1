"""Rule knn_report: nearest-neighbour titles for a sample of items (embedding sanity check)."""

import polars as pl

from llmrecbench.io import write_json
from llmrecbench.semantic_ids.pipeline import knn_sanity
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    p = snakemake.params  # noqa: F821
    items = pl.read_parquet(snakemake.input.item_table)  # noqa: F821
    report = knn_sanity(snakemake.input.embeddings, items, sample=p.sample, k=p.k, seed=p.seed)  # noqa: F821
    log.info("kNN report for %d items", len(report))
    write_json(report, snakemake.output.report)  # noqa: F821
