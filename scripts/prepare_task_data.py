"""Rule prepare_task_data: a task's own data (explanation: the Sentires-like extraction; review:
text-summary pairs; both from the shared split; ctr: labelled pairs from the interactions) +
stats.json with what was left out."""

from llmrecbench.io import write_json, write_parquet
from llmrecbench.tasks import get_task
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    task = get_task(smk.wildcards.task)
    parts, stats = task.prepare(dict(smk.input.items()), dict(smk.params.ground_truth))
    log.info("%s pairs per part: %s", task.name, {p: f.height for p, f in parts.items()})
    for part, frame in parts.items():
        write_parquet(frame, smk.output[part])
    write_json(stats, smk.output.stats)
