"""Rule train_semantic_ids: RQ-VAE over item embeddings -> unique semantic IDs + report."""

from llmrecbench.io import write_json, write_parquet
from llmrecbench.semantic_ids.pipeline import semantic_ids
from llmrecbench.semantic_ids.rqvae import save_rqvae
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    w = snakemake.wildcards  # noqa: F821
    codes, report, model = semantic_ids(
        snakemake.input.embeddings, int(w.levels), int(w.codebook), dict(snakemake.params.options)  # noqa: F821
    )
    log.info("collision rate before resolution %.4f", report["before_resolution"]["collision_rate"])
    write_parquet(codes, snakemake.output.codes)  # noqa: F821
    write_json(report, snakemake.output.report)  # noqa: F821
    save_rqvae(model, snakemake.output.model)  # noqa: F821
