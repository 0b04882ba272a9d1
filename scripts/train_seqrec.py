"""Rule train_seqrec: fit one registered sequential model on the leave-one-out split."""

from pathlib import Path

from llmrecbench.io import write_json
from llmrecbench.seqrec import load_sequences, train
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    data = load_sequences(Path(snakemake.input.train).parent, snakemake.input.item_table)  # noqa: F821
    log.info("%d users, %d items", data.n_users, data.n_items)
    model, train_log = train(
        snakemake.params.spec,  # noqa: F821
        data,
        snakemake.params.evaluation,  # noqa: F821
        seed=int(snakemake.wildcards.seed),  # noqa: F821
        checkpoint_root=snakemake.params.checkpoint_root,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
        semantic_codes=snakemake.input.get("semantic_codes"),  # noqa: F821
        item_embeddings=snakemake.input.get("item_embeddings"),  # noqa: F821
    )
    model.save(snakemake.output.model)  # noqa: F821
    write_json(train_log, snakemake.output.train_log)  # noqa: F821
