"""Rule plot_tradeoff: accuracy vs latency figure from a merged table."""

import polars as pl

from llmrecbench.tables.plots import tradeoff_plot
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    table = pl.read_csv(snakemake.input.table)  # noqa: F821
    tradeoff_plot(table, snakemake.output.plot, metric=snakemake.params.metric, unit=snakemake.params.unit)  # noqa: F821
    log.info("plotted %d rows", table.height)
