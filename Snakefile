# LLMRecBench: LLMs as recommenders beside conventional recommenders, on the same data and splits.
#
# Path scheme (built in one place, src/llmrecbench/paths.py; everything computed under results/):
#   resources/raw/{source}/{file}                                    raw file (mirror copy or download, checksummed)
#   results/{dataset}/data/{interactions,items,users}.parquet        canonical data, stats.json
#   results/{dataset}/splits/{split}/{train,valid,test}.parquet      split = loo | ratio_8_1_1 (+ item_index.parquet, stats.json)
#   results/{dataset}/embeddings/{encoder}.parquet                    item text vectors (+ .provenance.json, .knn.json)
#   results/{dataset}/semantic_ids/{encoder}/{L}x{K}/codes.parquet    unique semantic IDs (+ report.json, rqvae.pt)
#   results/{dataset}/{task}/candidates/{stage}.parquet               sampled candidate lists (direct)
#   results/{dataset}/{task}/data/{train,valid,test}.parquet           a task's own pairs (explanation, review; + stats.json)
#   results/{dataset}/{task}/{model}/seed{seed}/model.pt             trained model (+ train_log.json, checkpoints/)
#   results/{dataset}/{task}/{model}/seed{seed}/metrics.json         one table cell (+ topk | predictions | generations.parquet, timing.json; na.json if N/A)
#   resources/models/{model}/                                        converted LLM folder (+ model_manifest.json)
#   results/{dataset}/{task}/prompts/{template}/{split}.jsonl         LLM prompt file (template = id-item_repr)
#   results/{dataset}/{task}/{model}/{setting}/seed{seed}/adapter/     LLM adapter (+ train_log.json, checkpoints/)
#   results/{dataset}/{task}/{model}/{setting}/seed{seed}/metrics.json LLM cell (+ topk | predictions | generations.parquet, timing.json; na.json if N/A)
#   results/provenance/{dataset}/{task}/{model}[/{setting}]/seed{seed}.json  cell manifest
#   results/tables/{task}.{csv,md}                                    merged table of one task (seqrec | rating | direct | explanation | review)
#   results/plots/{task}_tradeoff.png                                accuracy vs latency figure (in the report)
#   results/logs/<same path>.log, results/benchmarks/<same path>.tsv  one per rule and output

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/ingest.smk"
include: "rules/splits.smk"
include: "rules/semantic.smk"
include: "rules/models.smk"
include: "rules/llm.smk"
include: "rules/tables.smk"
include: "rules/report.smk"


# Default target: the table (csv + md) and trade-off plot of every configured task.
rule all:
    default_target: True
    input:
        expand(paths.TABLE, task=configured_tables(), ext=["csv", "md"]),
        expand(paths.PLOT, task=configured_tables()),
