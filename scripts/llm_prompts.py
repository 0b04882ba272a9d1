"""Rule build_llm_prompts: one prompt file (template x item representation x split)."""

from llmrecbench.llm.recommend import build_prompt_file
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    n = build_prompt_file(
        {part: smk.input[part] for part in ("train", "valid", "test")},
        smk.input.item_table,
        key=smk.wildcards.template,
        split=smk.wildcards.prompt_split,
        dest=smk.output.prompts,
        prompt_cfg=smk.params.prompts,
        codes_path=smk.input.get("codes"),
    )
    log.info("%d prompts", n)
