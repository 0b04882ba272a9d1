"""Rule evaluate_llm: test-set ranked lists of one LLM setting -> one table cell (+ timing, provenance)."""

import json
from pathlib import Path

from llmrecbench.io import write_json, write_parquet
from llmrecbench.llm.loading import MANIFEST
from llmrecbench.provenance import record, rule_chain
from llmrecbench.tables.cells import write_cell
from llmrecbench.tasks import get_task
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    adapter = smk.input.get("adapter")
    task = get_task(smk.wildcards.task, smk.params.evaluation)
    identity = {
        "dataset": smk.wildcards.dataset,
        "model": smk.wildcards.model,
        "setting": smk.wildcards.setting,
        "seed": int(smk.wildcards.seed),
        "indexing": smk.params.indexing,
    }
    cell, rows, timing = task.evaluate_llm(
        {name: str(path) for name, path in smk.input.items()}, smk.params.spec, smk.params.llm, identity=identity
    )
    train_log = json.loads(Path(smk.input.train_log).read_text()) if adapter else {}
    log.info(
        "status %s; N/A rate %.3f; metrics %s; %.1f ms per user",
        cell["status"], cell["extra_columns"]["na_rate"], cell["metrics_if_counted"], timing["latency_ms_per_user"],
    )
    # the model folder is digested through its manifest, which records every weight file's sha256
    inputs = [str(p) for name, p in smk.input.items() if name not in ("adapter", "train_log", "model")]
    inputs.append(str(Path(smk.input.model) / MANIFEST))
    inputs += sorted(str(p) for p in Path(adapter).glob("*.safetensors")) if adapter else []
    manifest = record(
        {
            "setting": smk.params.spec,
            "llm": smk.params.llm,
            "evaluation": smk.params.evaluation,
            "indexing": smk.params.indexing,
        },
        inputs=inputs,
        cell=smk.output.metrics,
        rule_chain=rule_chain([p for p in smk.input if p], smk.rule),
        seed=int(smk.wildcards.seed),
        llm=cell["llm"],
        train_seconds=train_log.get("total_seconds"),
        train_epochs=len(train_log.get("history", [])) if adapter else None,
        train_prompts=train_log.get("train_prompts"),  # sha256 of the adapter's training prompt files
    )
    write_parquet(rows, smk.output.rows)
    write_json(timing, smk.output.timing)
    write_cell(cell, smk.output.metrics, timing=smk.output.timing, provenance=smk.output.provenance)
    write_json(manifest, smk.output.provenance)
