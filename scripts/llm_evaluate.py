"""Rule evaluate_llm: test-set ranked lists of one LLM setting -> one table cell."""

import json
from pathlib import Path

from llmrecbench.io import write_json, write_parquet
from llmrecbench.llm.recommend import run_evaluate
from llmrecbench.provenance import record
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    adapter = smk.input.get("adapter")
    cell, topk, timing = run_evaluate(
        Path(smk.input.model).parent,
        smk.input.prompts,
        smk.input.item_table,
        smk.params.spec,
        smk.params.llm,
        dataset=smk.wildcards.dataset,
        model_name=smk.wildcards.model,
        setting=smk.wildcards.setting,
        seed=int(smk.wildcards.seed),
        evaluation=smk.params.evaluation,
        indexing=smk.params.indexing,
        adapter_dir=adapter,
        codes_path=smk.input.get("codes"),
    )
    train_log = json.loads(Path(smk.input.train_log).read_text()) if adapter else {}
    cell["provenance"] = smk.output.provenance
    cell["timing"] = smk.output.timing
    log.info("test metrics: %s; N/A rate %.3f", cell["metrics"], cell["extra_columns"]["na_rate"])
    manifest = record(
        {"setting": smk.params.spec, "llm": smk.params.llm, "evaluation": smk.params.evaluation},
        inputs=[p for p in (smk.input.prompts, smk.input.item_table, smk.input.model, smk.input.get("codes")) if p],
        cell=smk.output.metrics,
        rule_chain=["prepare_llm", "build_llm_prompts"]
        + (["finetune_llm"] if adapter else [])
        + ["evaluate_llm"],
        seed=int(smk.wildcards.seed),
        llm=cell["llm"],
        train_seconds=train_log.get("total_seconds"),
    )
    write_parquet(topk, smk.output.topk)
    write_json(timing, smk.output.timing)
    write_json(cell, smk.output.metrics)
    write_json(manifest, smk.output.provenance)
