"""Rule llm_na_cell: the table cell of an LLM setting that cannot run on a dataset (N/A + why)."""

from llmrecbench.tables.cells import write_cell
from llmrecbench.llm.settings import unavailable_cell
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    w = smk.wildcards
    cell = unavailable_cell(w.dataset, w.model, w.setting, smk.params.block, int(w.seed), smk.params.reason, task=w.task)
    log.info("%s", cell["note"])
    write_cell(cell, smk.output.cell)
