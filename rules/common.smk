# Shared helpers: config validation, wildcard constraints and input functions.
from pathlib import Path

from snakemake.utils import validate

from llmrecbench.config import check_config, check_registry_names

# one-line errors first (config files, key path, problem), then validate() fills in defaults
CONFIG_SOURCE = " + ".join(map(str, workflow.configfiles)) or "config"
check_config(
    config, workflow.source_path("../schemas/config.schema.yaml"), CONFIG_SOURCE
)
validate(config, schema="../schemas/config.schema.yaml")
check_registry_names(config, CONFIG_SOURCE)


wildcard_constraints:
    dataset="|".join(
        sorted(map(lambda name: name.replace("-", "\\-"), config["datasets"]))
    ),
    source="[A-Za-z0-9_\\-]+",
    filename="[A-Za-z0-9_.\\-]+",
    split="loo|ratio_8_1_1",
    model="[A-Za-z0-9_\\-]+",
    seed="[0-9]+",
    task="seqrec",
    encoder="[A-Za-z0-9_\\-]+",
    levels="[0-9]+",
    codebook="[0-9]+",


def mirror_dir():
    """The configured mirror directory as an absolute path, or None."""
    mirror = config.get("mirror")
    return str(Path(mirror).resolve()) if mirror else None


def raw_filename(spec):
    """File name of a raw file: the basename of its mirror path, else of its URL."""
    return Path(spec["mirror"] or spec["url"]).name


def raw_file_spec(wildcards):
    """url / sha256 / mirror path of the raw file {filename} of source {source}."""
    for spec in config["sources"][wildcards.source]["files"].values():
        if raw_filename(spec) == wildcards.filename:
            return spec
    raise ValueError(
        f"config.yaml: source {wildcards.source!r} lists no file {wildcards.filename!r}"
    )


def raw_files_of_dataset(wildcards):
    """Every raw file of the dataset's source, keyed by its role (user_sequence, meta, ...)."""
    source = config["datasets"][wildcards.dataset]["source"]
    return {
        role: f"resources/raw/{source}/{raw_filename(spec)}"
        for role, spec in config["sources"][source]["files"].items()
    }


def dataset_spec(wildcards):
    """The dataset's config block (format, k_core, subsample_users, ...)."""
    return config["datasets"][wildcards.dataset]


def seqrec_model_spec(wildcards):
    """The model's config block; unknown names fail with the list of known ones."""
    if wildcards.model not in config["seqrec_models"]:
        raise ValueError(
            f"config.yaml: unknown seqrec model {wildcards.model!r}; "
            f"known: {', '.join(sorted(config['seqrec_models']))}"
        )
    return config["seqrec_models"][wildcards.model]


def table_cells(wildcards):
    """Every cell file ({name}.json) the table of {task} merges."""
    return expand(
        "results/{dataset}/{task}/{model}/seed{seed}/{name}.json",
        dataset=config["run"]["datasets"],
        task=wildcards.task,
        model=config["run"][f"{wildcards.task}_models"],
        seed=config["run"]["seeds"],
        allow_missing=True,
    )


def table_metric_cells(wildcards):
    """Deterministic cell JSONs of the table of {task}."""
    return [p.format(name="metrics") for p in table_cells(wildcards)]


def table_timing_cells(wildcards):
    """Wall-clock records the cells point to (latency column)."""
    return [p.format(name="timing") for p in table_cells(wildcards)]


def text_items_table(wildcards):
    """items.parquet of a dataset that has item text; others fail in one plain line."""
    if "item_text" not in config["datasets"][wildcards.dataset].get("provides", []):
        raise ValueError(
            f"dataset {wildcards.dataset!r} provides no item text (config: datasets."
            f"{wildcards.dataset}.provides), so it has no embeddings or semantic IDs"
        )
    return f"results/{wildcards.dataset}/data/items.parquet"


def encoder_spec(wildcards):
    """The encoder's config block (Hugging Face id, text template, batch size)."""
    encoders = config["semantic_ids"]["encoders"]
    if wildcards.encoder not in encoders:
        raise ValueError(
            f"config: unknown encoder {wildcards.encoder!r}; known: {', '.join(sorted(encoders))}"
        )
    return encoders[wildcards.encoder]


def semantic_inputs(wildcards):
    """Codes and embeddings for models over semantic representations (spec key `semantic:`)."""
    sem = seqrec_model_spec(wildcards).get("semantic")
    if not sem:
        return {}
    base = f"results/{wildcards.dataset}"
    return {
        "item_embeddings": f"{base}/embeddings/{sem['encoder']}.parquet",
        "semantic_codes": f"{base}/semantic_ids/{sem['encoder']}/{sem['levels']}x{sem['codebook']}/codes.parquet",
    }
