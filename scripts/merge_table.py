"""Rule merge_table: every cell JSON of a task -> results/tables/{task}.csv and .md (the task's metric columns)."""

from llmrecbench.io import atomic_path, write_text
from llmrecbench.tables import merge_cells, read_cells, to_markdown
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    table = merge_cells(read_cells(snakemake.input.cells), metrics=snakemake.params.metrics)  # noqa: F821
    log.info("%d rows from %d cells", table.height, len(snakemake.input.cells))  # noqa: F821
    with atomic_path(snakemake.output.csv) as tmp:  # noqa: F821
        table.write_csv(tmp, float_precision=6)
    write_text(to_markdown(table), snakemake.output.md)  # noqa: F821
