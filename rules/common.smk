# Shared helpers: config validation, wildcard constraints and input functions.
import copy
import re
from pathlib import Path

from snakemake.utils import validate

from llmrecbench import paths
from llmrecbench.config import check_config, check_registry_names
from llmrecbench.errors import ConfigError
from llmrecbench.tasks import FAMILY_HOME, get_task, known_task_names
from llmrecbench.llm.prompts import parse_prompt_key, seen_templates
from llmrecbench.llm.settings import (
    check_adapter_source,
    multitask_templates,
    prompt_key_of,
    setting_spec,
    unavailable_reason,
)

# one-line errors first (config files, key path, problem), then validate() fills in defaults
CONFIG_SOURCE = " + ".join(map(str, workflow.configfiles)) or "config"
check_config(
    config, workflow.source_path("../schemas/config.schema.yaml"), CONFIG_SOURCE
)
LLM_SETTINGS_AS_WRITTEN = copy.deepcopy(config.get("llm_settings", {}))
validate(config, schema="../schemas/config.schema.yaml")
check_registry_names(config, CONFIG_SOURCE)
# a bad LLM setting fails before any job runs (checked as written, before defaults filled it in)
for _name in sorted({s for t in config["tasks"].values() for s in t["llm_settings"]}):
    try:
        check_adapter_source(_name, LLM_SETTINGS_AS_WRITTEN)
    except ConfigError as exc:
        raise ConfigError(f"{CONFIG_SOURCE}: {exc}") from None


def name_pattern(names):
    """Regex matching exactly the given registry names (and nothing when there are none)."""
    return "|".join(sorted(re.escape(n) for n in names)) or "(?!)"


wildcard_constraints:
    dataset="|".join(
        sorted(map(lambda name: name.replace("-", "\\-"), config["datasets"]))
    ),
    source="[A-Za-z0-9_\\-]+",
    filename="[A-Za-z0-9_.\\-]+",
    split="loo|ratio_8_1_1",
    model="[A-Za-z0-9_\\-]+",
    seed="[0-9]+",
    task=name_pattern(known_task_names()),
    stage="valid|test",
    encoder="[A-Za-z0-9_\\-]+",
    levels="[0-9]+",
    codebook="[0-9]+",
    setting=name_pattern(config["llm_settings"]),
    template="[a-z0-9_]+-(text|unique_id|number_text|semantic_id)(\\.(random|sequential_train_only|p5_sequential))?",
    prompt_split="train|valid|test",


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
    """The dataset's config block as ingest reads it (format, k_core, subsample_users, ...);
    the prompt-only `category` is left out, so naming it does not re-ingest the data."""
    spec = config["datasets"][wildcards.dataset]
    return {key: value for key, value in spec.items() if key != "category"}


def task_of(wildcards):
    """The task {task} with its evaluation options; an unknown name fails in one line."""
    if wildcards.task not in known_task_names():
        raise ValueError(
            f"unknown task {wildcards.task!r}; known: {', '.join(known_task_names())}"
        )
    return get_task(wildcards.task, task_evaluation(wildcards))


def task_evaluation(wildcards):
    """The `tasks.<task>.evaluation` block (schema defaults filled in)."""
    return config["tasks"].get(wildcards.task, {}).get("evaluation", {})


def tasks_with_rows(rows_file):
    """Regex of the tasks whose cells write `rows_file` beside metrics.json (the rule that evaluates them)."""
    return name_pattern(
        [t for t in known_task_names() if get_task(t).rows_file == rows_file]
    )


def model_spec(wildcards):
    """The model's `models:` block; unknown names, and a family the task does not take, fail in one line."""
    if wildcards.model not in config["models"]:
        raise ValueError(
            f"config.yaml: unknown model {wildcards.model!r}; known: {', '.join(sorted(config['models']))}"
        )
    spec = config["models"][wildcards.model]
    task = get_task(wildcards.task)
    if spec["family"] not in task.families:
        raise ValueError(
            f"config.yaml: model {wildcards.model!r} is a {spec['family']} model; task {task.name} takes "
            f"{', '.join(task.families)} models"
        )
    return spec


def row_indexing(wildcards):
    """The item numbering a row's model sees: its block's `indexing:`, else `splits.indexing`."""
    return model_spec(wildcards).get("indexing", config["splits"]["indexing"])


def trained_model_spec(wildcards):
    """The block of a model trained under {task} (its family's home task), less its test-time
    `decoding:` (so changing the beam width re-evaluates without retraining); a `weights_from:`
    block is not trained."""
    spec = model_spec(wildcards)
    home = FAMILY_HOME[spec["family"]]
    if wildcards.task != home:
        raise ValueError(
            f"config.yaml: {spec['family']} model {wildcards.model!r} is trained for task {home}, not {wildcards.task}"
        )
    if spec.get("weights_from"):
        raise ValueError(
            f"config.yaml: model {wildcards.model!r} evaluates the weights of "
            f"{spec['weights_from']!r} (weights_from) and is not trained itself"
        )
    return {key: value for key, value in spec.items() if key != "decoding"}


def model_train_inputs(wildcards):
    """The task's training files (split, entity tables, valid candidates) + semantic inputs."""
    trained_model_spec(wildcards)
    return {
        **task_of(wildcards).train_inputs(wildcards.dataset),
        **semantic_inputs(wildcards),
    }


def trained_model(wildcards):
    """model.pt and train_log.json a cell evaluates: its own, or those of its `weights_from:` block
    (blocks that differ only in test-time decoding share one trained model), trained under the
    home task of its family (a sequential model trained for seqrec is scored by direct too).
    """
    spec = model_spec(wildcards)
    owner = spec.get("weights_from") or wildcards.model
    if owner not in config["models"]:
        raise ValueError(
            f"config.yaml: models.{wildcards.model}.weights_from: unknown model {owner!r}"
        )
    if config["models"][owner]["class"] != spec["class"]:
        raise ValueError(
            f"config.yaml: models.{wildcards.model}.weights_from: {owner!r} is a "
            f"{config['models'][owner]['class']!r} model, not {spec['class']!r}"
        )
    where = dict(
        dataset=wildcards.dataset,
        task=FAMILY_HOME[spec["family"]],
        model=owner,
        seed=wildcards.seed,
    )
    return {
        "model": paths.fill(paths.CELL_FILE, name="model.pt", **where),
        "train_log": paths.fill(paths.CELL_FILE, name="train_log.json", **where),
    }


def model_eval_inputs(wildcards):
    """The trained model + the task's test files (split, entity tables, test candidates)."""
    return {
        **trained_model(wildcards),
        **task_of(wildcards).eval_inputs(wildcards.dataset),
    }


def candidate_inputs(wildcards):
    """Split files a task's candidate sampler reads."""
    task = task_of(wildcards)
    if task.candidates == "none":
        raise ValueError(f"task {task.name} ranks no sampled candidates")
    return task.data_inputs(wildcards.dataset)


def tasks_with_own_data():
    """Regex of the tasks whose data rule builds results/{dataset}/{task}/data/ (the text tasks)."""
    return name_pattern([t for t in known_task_names() if get_task(t).own_data])


def task_data_inputs(wildcards):
    """The split files a task's data rule reads; a dataset that cannot serve the task fails in one line."""
    task = task_of(wildcards)
    why = task.unavailable_reason(
        wildcards.dataset, config["datasets"][wildcards.dataset].get("provides", [])
    )
    if why:
        raise ValueError(f"config.yaml: {why.removeprefix('N/A: ')}")
    return task.prepare_inputs(wildcards.dataset)


def llm_task_pattern():
    """Regex of the tasks that have an LLM prompt builder and answer reader."""
    return name_pattern([t for t in known_task_names() if get_task(t).llm])


def task_block(task):
    return config["tasks"].get(task, {})


def llm_seeds():
    return config["run"]["llm_seeds"] or config["run"]["seeds"]


def missing_raw_file(dataset):
    """Why a dataset's raw files cannot be had (N/A reason), or None: a file counts as there when
    it is already fetched (resources/raw), in the mirror, or downloadable (a URL and `fetch_missing`).
    """
    source = config["datasets"][dataset]["source"]
    for role, spec in config["sources"][source]["files"].items():
        name = raw_filename(spec)
        if Path(f"resources/raw/{source}/{name}").exists():
            continue
        mirrored = mirror_dir() and spec["mirror"]
        if mirrored and (Path(mirror_dir()) / spec["mirror"]).exists():
            continue
        if spec["url"] and config["fetch_missing"]:
            continue
        where = (
            f"not in the mirror ({spec['mirror']})"
            if mirrored
            else "not mirrored (sources.{0}.files.{1}.mirror is null)".format(
                source, role
            )
        )
        fetch = (
            f"fetch_missing: true downloads it from {spec['url']}"
            if spec["url"]
            else "it has no upstream URL"
        )
        return f"N/A: raw file {name} of dataset {dataset} is {where}; {fetch}"
    return None


def table_cells(wildcards):
    """(cell folder, reason it cannot be computed or None) of every conventional cell of the table of {task}."""
    block = task_block(task_of(wildcards).name)
    return [
        (
            paths.fill(
                paths.CELL, dataset=dataset, task=wildcards.task, model=model, seed=seed
            ),
            conventional_na_reason(dataset, model),
        )
        for dataset in block.get("datasets", [])
        for model in block.get("models", [])
        for seed in config["run"]["seeds"]
    ]


# item representations built from the items' text (titles): a dataset without item text has none
TEXT_REPRS = ("text", "semantic_embedding", "semantic_id")


def conventional_na_reason(dataset, model):
    """Why a conventional cell cannot be computed (raw files missing, or a text-based item
    representation on a dataset without item text), else None."""
    spec = config["models"].get(model, {})
    repr_ = spec.get("item_repr", "unique_id")
    provides = config["datasets"][dataset].get("provides", [])
    if repr_ in TEXT_REPRS and "item_text" not in provides:
        return (
            f"N/A: model {model} represents items by {repr_}, built from item text, and dataset "
            f"{dataset} provides none (datasets.{dataset}.provides: {provides or 'nothing'})"
        )
    return missing_raw_file(dataset)


def conventional_unavailable(wildcards):
    """The N/A reason of a conventional cell (see conventional_na_reason)."""
    return (
        conventional_na_reason(wildcards.dataset, wildcards.model)
        or "N/A: not computed (the dataset is available; build metrics.json)"
    )


def llm_table_cells(wildcards):
    """(cell folder, reason it cannot be computed or None) of every LLM cell of the table of {task}."""
    block = task_block(task_of(wildcards).name)
    return [
        (
            paths.fill(
                paths.LLM_CELL,
                dataset=dataset,
                task=wildcards.task,
                model=model,
                setting=setting,
                seed=seed,
            ),
            llm_unavailable(dataset, setting, wildcards.task),
        )
        for dataset in block.get("datasets", [])
        for model in block.get("llm_models", [])
        for setting in block.get("llm_settings", [])
        for seed in llm_seeds()
    ]


def table_metric_cells(wildcards):
    """Deterministic cell JSONs of the table of {task} (a cell that cannot be computed: na.json);
    a table with no cell at all fails in one line naming the config keys to fill."""
    cells = [
        f"{cell}/{'metrics' if why is None else 'na'}.json"
        for cell, why in table_cells(wildcards) + llm_table_cells(wildcards)
    ]
    if not cells:
        raise ValueError(
            f"config.yaml: the table of task {wildcards.task!r} has no cells: list datasets and "
            f"models (or llm_models and llm_settings) under tasks.{wildcards.task}"
        )
    return cells


def table_timing_cells(wildcards):
    """Wall-clock records the cells point to (latency column)."""
    return [
        f"{cell}/timing.json"
        for cell, why in table_cells(wildcards) + llm_table_cells(wildcards)
        if why is None
    ]


def configured_tables():
    """Tables `snakemake` builds by default: every task with a dataset and a model or LLM setting."""
    return [
        name
        for name, block in config["tasks"].items()
        if block.get("datasets") and (block.get("models") or block.get("llm_settings"))
    ]


def llm_unavailable(dataset, setting, task):
    """Why an LLM setting cannot run on a dataset in `task` (raw files missing, or its items lack
    text it needs), else None."""
    return missing_raw_file(dataset) or unavailable_reason(
        dataset,
        config["datasets"][dataset].get("provides", []),
        setting,
        config["llm_settings"][setting],
        task,
    )


def llm_model_spec(wildcards):
    """The LLM's config block; unknown names fail with the list of known ones."""
    if wildcards.model not in config["llm_models"]:
        raise ValueError(
            f"config.yaml: unknown LLM {wildcards.model!r}; "
            f"known: {', '.join(sorted(config['llm_models']))}"
        )
    return config["llm_models"][wildcards.model]


def llm_model_source(wildcards):
    """The GGUF file an offline LLM is converted from (inside its pip package), as a named input
    (a reinstalled package re-runs the conversion); hub models have no file input."""
    from llmrecbench.llm.loading import gguf_path, llm_spec

    spec = llm_spec(wildcards.model, llm_model_spec(wildcards))
    return {"gguf": str(gguf_path(spec))} if spec.gguf_file else {}


def llm_setting(wildcards):
    """The validated block of the LLM setting {setting} (method, item_repr, templates, ...)."""
    return setting_spec(
        wildcards.setting,
        config["llm_settings"][wildcards.setting],
        getattr(wildcards, "task", None),
    )


def multitask_tasks(dataset, setting):
    """Task families (registry order) whose table lists, for `dataset`, a setting that evaluates
    the multitask adapter of `setting` and can run there: the families whose seen templates
    train it (a family whose cells are N/A on the dataset adds no prompts)."""
    return [
        t
        for t in known_task_names()
        if get_task(t).llm
        and dataset in task_block(t).get("datasets", [])
        and any(
            setting_spec(s, config["llm_settings"][s])["adapter_setting"] == setting
            and llm_unavailable(dataset, s, t) is None
            for s in task_block(t).get("llm_settings", [])
        )
    ]


def llm_training_spec(wildcards):
    """What fine-tuning depends on (method, item representation, template, finetune options):
    changing decoding, labels or evaluation templates does not retrain an adapter."""
    spec = llm_setting(wildcards)
    out = {k: spec.get(k, {}) for k in ("method", "item_repr", "template", "finetune")}
    if spec.get("indexing"):  # the item numbering of the training prompts
        out["indexing"] = spec["indexing"]
    if spec["multitask"]:
        tasks = multitask_tasks(wildcards.dataset, wildcards.setting)
        out["template"] = "+".join(multitask_templates(tasks))
    return out


def llm_codes(item_repr, dataset):
    """Semantic-ID codes of the dataset as a one-entry input dict (empty for other reprs)."""
    if item_repr != "semantic_id":
        return {}
    sem = config["llm"]["semantic_ids"]
    return {
        "codes": paths.semantic_codes(
            dataset, sem["encoder"], sem["levels"], sem["codebook"]
        )
    }


def llm_prompt_inputs(wildcards):
    """The task's data of one prompt file ({template} = id-repr): split files, item table, the
    stage's candidates where the task ranks them (+ semantic-ID codes)."""
    return {
        **task_of(wildcards).llm_prompt_inputs(
            wildcards.dataset, wildcards.prompt_split
        ),
        **llm_codes(parse_prompt_key(wildcards.template, True)[1], wildcards.dataset),
    }


def llm_prompt_context(wildcards):
    """Dataset facts a prompt template may show (the product category of LLMRec's rating prompt)."""
    return {"category": config["datasets"][wildcards.dataset].get("category")}


def llm_task_rows(rows_file):
    """Regex of the tasks with LLM rows whose cells write `rows_file` (the rule that evaluates them)."""
    return name_pattern(
        [
            t
            for t in known_task_names()
            if get_task(t).llm and get_task(t).rows_file == rows_file
        ]
    )


def llm_finetune_inputs(wildcards):
    """Training prompts of the setting's seen template(s), the prepared model, items (+ codes)."""
    spec = llm_setting(wildcards)
    if spec["multitask"]:
        raise ValueError(
            f"config.yaml: llm_settings.{wildcards.setting} is multitask; rule finetune_multitask trains it"
        )
    if spec["adapter_setting"] != wildcards.setting:
        raise ValueError(
            f"config.yaml: llm_settings.{wildcards.setting} evaluates the adapter of "
            f"{spec['adapter_setting']!r} (adapter_from) and is not trained itself"
        )
    return {
        "prompts": [
            paths.fill(
                paths.PROMPTS,
                dataset=wildcards.dataset,
                task=wildcards.task,
                template=prompt_key_of(spec, template),
                prompt_split="train",
            )
            for template in spec["train_templates"]
        ],
        "model": paths.fill(paths.LLM_MODEL, model=wildcards.model),
        "item_table": paths.fill(paths.ITEMS, dataset=wildcards.dataset),
        **llm_codes(spec["item_repr"], wildcards.dataset),
    }


def llm_multitask_inputs(wildcards):
    """Training prompts of every seen template of every task family of the multitask setting on
    the dataset (task by task), the prepared model, items (+ codes)."""
    spec = llm_setting(wildcards)
    if not spec["multitask"] or spec["adapter_setting"] != wildcards.setting:
        raise ValueError(
            f"config.yaml: llm_settings.{wildcards.setting} does not train a multitask adapter"
        )
    tasks = multitask_tasks(wildcards.dataset, wildcards.setting)
    if not tasks:
        raise ValueError(
            f"config.yaml: no task lists llm setting {wildcards.setting!r} for {wildcards.dataset}"
        )
    return {
        "prompts": [
            paths.fill(
                paths.PROMPTS,
                dataset=wildcards.dataset,
                task=task,
                template=prompt_key_of(spec, template),
                prompt_split="train",
            )
            for task in tasks
            for template in seen_templates(task)
        ],
        "model": paths.fill(paths.LLM_MODEL, model=wildcards.model),
        "item_table": paths.fill(paths.ITEMS, dataset=wildcards.dataset),
        **llm_codes(spec["item_repr"], wildcards.dataset),
    }


def llm_evaluate_inputs(wildcards):
    """Test prompts of the setting's evaluation template, the model, the adapter if fine-tuned
    (its own, or that of its `adapter_from:` setting, same model and seed)."""
    spec = llm_setting(wildcards)
    key = prompt_key_of(spec, spec["eval_template"])
    w = wildcards
    run_dir = paths.fill(
        paths.LLM_MULTITASK if spec["multitask"] else paths.LLM_CELL,
        dataset=w.dataset,
        task=w.task,
        model=w.model,
        setting=spec["adapter_setting"],
        seed=w.seed,
    )
    inputs = {
        "prompts": paths.fill(
            paths.PROMPTS,
            dataset=w.dataset,
            task=w.task,
            template=key,
            prompt_split="test",
        ),
        "model": paths.fill(paths.LLM_MODEL, model=w.model),
        "item_table": paths.fill(paths.ITEMS, dataset=w.dataset),
        **task_of(w).llm_eval_inputs(w.dataset),
        **llm_codes(spec["item_repr"], w.dataset),
    }
    if spec["method"] != "zeroshot":
        inputs["adapter"] = f"{run_dir}/adapter"
        inputs["train_log"] = f"{run_dir}/train_log.json"
    return inputs


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
    """Embeddings (and, given levels x codebook, semantic IDs) for models over semantic
    representations (spec key `semantic:`)."""
    sem = config["models"].get(wildcards.model, {}).get("semantic")
    if not sem:
        return {}
    inputs = {
        "item_embeddings": paths.fill(
            paths.EMBEDDINGS, dataset=wildcards.dataset, encoder=sem["encoder"]
        )
    }
    if "levels" in sem:
        inputs["semantic_codes"] = paths.fill(
            paths.SEMANTIC_CODES,
            dataset=wildcards.dataset,
            encoder=sem["encoder"],
            levels=sem["levels"],
            codebook=sem["codebook"],
        )
    return inputs
