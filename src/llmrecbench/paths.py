"""Every result path of the workflow, built in one place.

Each constant is a pattern with Snakemake wildcards (``{dataset}``, ``{task}``, ...); rules use
the patterns as outputs, input functions and the library fill them with :func:`fill`. No other
module writes a result path string, so moving a file is a one-line change here.

Layout (a conventional cell and an LLM cell of the same task sit side by side under
``results/{dataset}/{task}/{model}/``; the LLM's ``{setting}`` is its variant level)::

    results/{dataset}/data/{interactions,items,users}.parquet, stats.json
    results/{dataset}/splits/{split}/{train,valid,test}.parquet, item_index.parquet, stats.json
    results/{dataset}/{task}/data/{part}.parquet, stats.json      a task's own data (explanation, review, ctr)
    results/{dataset}/{task}/candidates/{stage}.parquet           sampled candidates (direct)
    results/{dataset}/{task}/{model}/seed{seed}/                  conventional cell + trained model
    results/{dataset}/{task}/{model}/{setting}/seed{seed}/        LLM cell (+ adapter)
    results/{dataset}/multitask/{model}/{setting}/seed{seed}/     multitask adapter (all task families)
    results/{dataset}/{task}/prompts/{template}/{prompt_split}.jsonl
    resources/models/{model}/                                     an LLM as a plain model folder
    results/provenance/{dataset}/{task}/{model}[/{setting}]/seed{seed}.json
    results/tables/{task}.csv, .md;  results/plots/{task}_tradeoff.png
    results/logs/<the output's path>.log, results/benchmarks/<the output's path>.tsv
"""

from __future__ import annotations

from typing import Any

RESULTS = "results"

# --- data ------------------------------------------------------------------------------------
DATA = RESULTS + "/{dataset}/data"
INTERACTIONS = DATA + "/interactions.parquet"
ITEMS = DATA + "/items.parquet"
USERS = DATA + "/users.parquet"
DATA_STATS = DATA + "/stats.json"
SPLIT = RESULTS + "/{dataset}/splits/{split}"
SPLIT_PART = SPLIT + "/{part}.parquet"
SPLIT_STATS = SPLIT + "/stats.json"
ITEM_INDEX = SPLIT + "/item_index.parquet"
SPLIT_PARTS = ("train", "valid", "test")

# --- a task's own data (the text tasks' ground truth, from the shared 8:1:1 split) ------------
TASK_DATA = RESULTS + "/{dataset}/{task}/data/{part}.parquet"
TASK_DATA_STATS = RESULTS + "/{dataset}/{task}/data/stats.json"

# --- candidates (tasks that rank a sampled candidate list) --------------------------------------
CANDIDATES = RESULTS + "/{dataset}/{task}/candidates/{stage}.parquet"

# --- conventional cells ---------------------------------------------------------------------
CELL = RESULTS + "/{dataset}/{task}/{model}/seed{seed}"
CELL_FILE = CELL + "/{name}"
CHECKPOINTS = CELL + "/checkpoints"
PROVENANCE = RESULTS + "/provenance/{dataset}/{task}/{model}/seed{seed}.json"
CELL_LOG = RESULTS + "/logs/{dataset}/{task}/{model}/seed{seed}/{step}.log"
CELL_BENCHMARK = RESULTS + "/benchmarks/{dataset}/{task}/{model}/seed{seed}/{step}.tsv"

# --- LLM cells ------------------------------------------------------------------------------
# a registered LLM converted once into a plain transformers folder (+ model_manifest.json); outside
# results/ because it is a resource shared by every dataset and task
LLM_MODEL = "resources/models/{model}"
LLM_CELL = RESULTS + "/{dataset}/{task}/{model}/{setting}/seed{seed}"
LLM_CELL_FILE = LLM_CELL + "/{name}"
LLM_CHECKPOINTS = LLM_CELL + "/checkpoints"
# one adapter per dataset trained on the pooled seen templates of every task family it serves
# (P5's / RecSysLLM's multitask protocol); each task's cell evaluates it
MULTITASK = "multitask"
LLM_MULTITASK = RESULTS + "/{dataset}/" + MULTITASK + "/{model}/{setting}/seed{seed}"
LLM_MULTITASK_FILE = LLM_MULTITASK + "/{name}"
LLM_MULTITASK_CHECKPOINTS = LLM_MULTITASK + "/checkpoints"
LLM_PROVENANCE = RESULTS + "/provenance/{dataset}/{task}/{model}/{setting}/seed{seed}.json"
LLM_LOG = RESULTS + "/logs/{dataset}/{task}/{model}/{setting}/seed{seed}/{step}.log"
LLM_BENCHMARK = RESULTS + "/benchmarks/{dataset}/{task}/{model}/{setting}/seed{seed}/{step}.tsv"
PROMPTS = RESULTS + "/{dataset}/{task}/prompts/{template}/{prompt_split}.jsonl"

# --- semantic layer -------------------------------------------------------------------------
EMBEDDINGS = RESULTS + "/{dataset}/embeddings/{encoder}.parquet"
SEMANTIC_IDS = RESULTS + "/{dataset}/semantic_ids/{encoder}/{levels}x{codebook}"
SEMANTIC_CODES = SEMANTIC_IDS + "/codes.parquet"

# --- tables ---------------------------------------------------------------------------------
TABLE = RESULTS + "/tables/{task}.{ext}"
PLOT = RESULTS + "/plots/{task}_tradeoff.png"


def fill(pattern: str, **wildcards: Any) -> str:
    """The pattern with every named wildcard filled (a missing one is a KeyError naming it)."""
    return pattern.format(**wildcards)


def partial(pattern: str, **wildcards: Any) -> str:
    """Fill only the given wildcards and keep the others as ``{name}`` (for Snakemake patterns)."""

    class _Keep(dict):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"

    return pattern.format_map(_Keep(**wildcards))


def split_files(dataset: str, split: str) -> dict[str, str]:
    """{train, valid, test} parquet files of one split of a dataset."""
    return {part: fill(SPLIT_PART, dataset=dataset, split=split, part=part) for part in SPLIT_PARTS}


def semantic_codes(dataset: str, encoder: str, levels: int, codebook: int) -> str:
    return fill(SEMANTIC_CODES, dataset=dataset, encoder=encoder, levels=levels, codebook=codebook)
