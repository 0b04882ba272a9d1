"""Rule finetune_llm: LoRA / P-tuning v2 adapter on the training prompts (resumable)."""

from llmrecbench.io import write_json
from llmrecbench.llm.recommend import run_finetune
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    train_log = run_finetune(
        smk.input.model,
        smk.input.prompts,
        smk.input.item_table,
        smk.params.spec,
        seed=int(smk.wildcards.seed),
        adapter_dir=smk.output.adapter,
        checkpoint_root=smk.params.checkpoint_root,
        codes_path=smk.input.get("codes"),
    )
    log.info("trained %d epochs in %.1f s", len(train_log["history"]), train_log["total_seconds"])
    write_json(train_log, smk.output.train_log)
