"""Rules evaluate_ranking_model / evaluate_pointwise_model: one trained model on the task's test data
-> one table cell, its per-row file, timing and provenance manifest."""

import json
from pathlib import Path

from llmrecbench.io import write_json, write_parquet
from llmrecbench.provenance import record, rule_chain
from llmrecbench.tables.cells import write_cell
from llmrecbench.tasks import get_task
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    w = smk.wildcards
    task = get_task(w.task, smk.params.evaluation)
    inputs = {k: v for k, v in smk.input.items() if k not in ("model", "train_log")}
    identity = {"dataset": w.dataset, "model": w.model, "seed": int(w.seed), "indexing": smk.params.indexing}
    cell, rows, timing = task.evaluate(smk.input.model, smk.params.spec, inputs, identity=identity)
    train_log = json.loads(Path(smk.input.train_log).read_text())
    log.info("test metrics: %s", cell["metrics"])
    files = [smk.input.model, *inputs.values()]
    manifest = record(
        {"model": smk.params.spec, "evaluation": smk.params.evaluation, "indexing": smk.params.indexing, "task": w.task},
        inputs=files,
        cell=smk.output.metrics,
        rule_chain=rule_chain(files, smk.rule),
        seed=int(w.seed),
        train_seconds=train_log.get("seconds"),
        best_epoch=train_log.get("best_epoch"),
    )
    write_parquet(rows, smk.output.rows)
    write_json(timing, smk.output.timing)
    write_cell(cell, smk.output.metrics, timing=smk.output.timing, provenance=smk.output.provenance)
    write_json(manifest, smk.output.provenance)
