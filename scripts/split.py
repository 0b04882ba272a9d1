"""Rule split_dataset: leave-one-out or 8:1:1 split, item indexing and leakage probe."""

import polars as pl

from llmrecbench.data.pipeline import make_split
from llmrecbench.io import write_json, write_parquet
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    interactions = pl.read_parquet(snakemake.input.interactions)  # noqa: F821
    result = make_split(
        interactions,
        kind=snakemake.wildcards.split,  # noqa: F821
        seed=snakemake.params.seed,  # noqa: F821
        indexing=snakemake.params.indexing,  # noqa: F821
    )
    log.info("split stats: %s", result.stats)
    write_parquet(result.train, snakemake.output.train)  # noqa: F821
    write_parquet(result.valid, snakemake.output.valid)  # noqa: F821
    write_parquet(result.test, snakemake.output.test)  # noqa: F821
    write_parquet(result.item_index, snakemake.output.item_index)  # noqa: F821
    write_json(result.stats, snakemake.output.stats)  # noqa: F821
