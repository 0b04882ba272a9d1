"""Rule evaluate_seqrec: full-ranking test evaluation of one model -> one table cell."""

import json
from pathlib import Path

from llmrecbench.io import write_json, write_parquet
from llmrecbench.models import SequentialRecommender
from llmrecbench.provenance import record
from llmrecbench.seqrec import evaluate_cell, load_sequences
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    data = load_sequences(Path(smk.input.test).parent, smk.input.item_table)
    model = SequentialRecommender.load(smk.input.model)
    cell, topk, timing = evaluate_cell(
        model,
        data,
        dataset=smk.wildcards.dataset,
        model_name=smk.wildcards.model,
        spec=smk.params.spec,
        seed=int(smk.wildcards.seed),
        evaluation=smk.params.evaluation,
        indexing=smk.params.indexing,
    )
    train_log = json.loads(Path(smk.input.train_log).read_text())
    cell["provenance"] = smk.output.provenance
    cell["timing"] = smk.output.timing
    log.info("test metrics: %s", cell["metrics"])
    manifest = record(
        {"model": smk.params.spec, "evaluation": smk.params.evaluation, "indexing": smk.params.indexing},
        inputs=[smk.input.model, smk.input.train, smk.input.valid, smk.input.test, smk.input.item_table],
        cell=smk.output.metrics,
        rule_chain=["download_raw_file", "ingest_dataset", "split_dataset", "train_seqrec", "evaluate_seqrec"],
        seed=int(smk.wildcards.seed),
        train_seconds=train_log.get("seconds"),
        best_epoch=train_log.get("best_epoch"),
    )
    write_parquet(topk, smk.output.topk)
    write_json(timing, smk.output.timing)
    write_json(cell, smk.output.metrics)
    write_json(manifest, smk.output.provenance)
