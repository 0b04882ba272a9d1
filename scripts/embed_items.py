"""Rule embed_items: item text -> normalised SentenceBERT vectors (+ encoder provenance)."""

import polars as pl

from llmrecbench.io import write_json, write_parquet
from llmrecbench.semantic_ids.pipeline import embed_items
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    items = pl.read_parquet(snakemake.input.item_table)  # noqa: F821
    frame, provenance = embed_items(items, snakemake.params.encoder, snakemake.params.cache_dir)  # noqa: F821
    log.info("encoded %d items: %s", frame.height, provenance)
    write_parquet(frame, snakemake.output.embeddings)  # noqa: F821
    write_json(provenance, snakemake.output.provenance)  # noqa: F821
