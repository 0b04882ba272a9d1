"""Rule ingest_dataset: raw files -> canonical interactions/items/users parquet + stats.json."""

from pathlib import Path

from llmrecbench.data.pipeline import ingest_canonical
from llmrecbench.io import write_json, write_parquet
from llmrecbench.workflow import rule_context

with rule_context(snakemake) as log:  # noqa: F821 - injected by Snakemake
    spec = snakemake.params.spec  # noqa: F821
    raw = {role: Path(path) for role, path in snakemake.input.items()}  # noqa: F821
    dataset, stats = ingest_canonical(
        fmt=spec["format"],
        files=raw,
        k_core=spec["k_core"],
        subsample_users=spec["subsample_users"],
        drop_variant_copies=spec["drop_variant_copies"],
        seed=snakemake.params.seed,  # noqa: F821
    )
    stats["dataset"] = snakemake.wildcards.dataset  # noqa: F821
    log.info("stats: %s", stats)
    write_parquet(dataset.interactions, snakemake.output.interactions)  # noqa: F821
    write_parquet(dataset.items, snakemake.output.item_table)  # noqa: F821
    write_parquet(dataset.users, snakemake.output.users)  # noqa: F821
    write_json(stats, snakemake.output.stats)  # noqa: F821
