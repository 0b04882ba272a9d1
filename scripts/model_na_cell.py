"""Rule model_na_cell: the table cell of a model whose dataset cannot be had (N/A + why)."""

from llmrecbench.tables.cells import na_cell, write_cell
from llmrecbench.tasks import get_task
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    w, spec = smk.wildcards, smk.params.spec
    cell = na_cell(
        dataset=w.dataset, task=w.task, model=w.model, model_class=spec["class"],
        item_repr=spec.get("item_repr", "unique_id"), setting=spec.get("setting", "default"), seed=int(w.seed),
        protocol={"split": get_task(w.task).split}, reason=smk.params.reason,
    )
    log.info("%s", cell["note"])
    write_cell(cell, smk.output.cell)
