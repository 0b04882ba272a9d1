"""Rule sample_candidates: the seeded candidate lists of one stage (valid / test) of a task."""

from llmrecbench.io import write_parquet
from llmrecbench.tasks import get_task
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    smk = snakemake  # noqa: F821
    task = get_task(smk.wildcards.task, smk.params.evaluation)
    frame = task.sample_candidates(dict(smk.input.items()), smk.wildcards.stage)
    log.info("%d users x %d candidates", frame.height, frame["candidates"].list.len().max())
    write_parquet(frame, smk.output.candidates)
