"""Rule build_llm_prompts: one prompt file (template x item representation x split), built by the task."""

from llmrecbench.tasks import get_task
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    task = get_task(smk.wildcards.task, smk.params.evaluation)
    n = task.build_llm_prompts(
        {name: str(path) for name, path in smk.input.items()},
        key=smk.wildcards.template,
        split=smk.wildcards.prompt_split,
        dest=smk.output.prompts,
        prompt_cfg=smk.params.prompts,
        context=smk.params.context,
    )
    log.info("%d prompts", n)
