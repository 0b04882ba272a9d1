"""Rule train_model: fit one registered model of the task's family on the task's training split."""

from llmrecbench.io import write_json
from llmrecbench.tasks import get_task
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    task = get_task(smk.wildcards.task, smk.params.evaluation)
    model, train_log = task.train(
        smk.params.spec,
        dict(smk.input.items()),
        seed=int(smk.wildcards.seed),
        checkpoint_root=smk.params.checkpoint_root,
        threads=smk.threads,
    )
    log.info("trained %s: best valid %s", smk.wildcards.model, train_log.get("best_valid"))
    model.save(smk.output.model)
    write_json(train_log, smk.output.train_log)
