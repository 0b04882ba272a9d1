# LLMRecBench: LLMs as recommenders beside conventional recommenders, on the same data and splits.
#
# Path scheme (everything computed lives under results/, raw inputs under resources/):
#   resources/raw/{source}/{file}                                 raw file (mirror copy or download, checksummed)
#   results/{dataset}/data/{interactions,items,users}.parquet     canonical data, stats.json
#   results/{dataset}/splits/{split}/{train,valid,test}.parquet   split = loo | ratio_8_1_1 (+ item_index.parquet, stats.json)
#   results/{dataset}/embeddings/{encoder}.parquet                 item text vectors (+ .provenance.json, .knn.json)
#   results/{dataset}/semantic_ids/{encoder}/{L}x{K}/codes.parquet unique semantic IDs (+ report.json, rqvae.pt)
#   results/{dataset}/seqrec/{model}/seed{seed}/model.pt          trained model (+ train_log.json, checkpoints/)
#   results/{dataset}/seqrec/{model}/seed{seed}/metrics.json      one table cell (+ topk.parquet)
#   resources/models/{model}/                                     converted LLM folder (+ model_manifest.json)
#   results/{dataset}/seqrec/prompts/{template}/{split}.jsonl      LLM prompt file (template = id-item_repr)
#   results/{dataset}/seqrec/{model}/{setting}/seed{seed}/adapter/  LLM adapter (+ train_log.json, checkpoints/)
#   results/{dataset}/seqrec/{model}/{setting}/seed{seed}/metrics.json  LLM cell (+ topk.parquet, timing.json)
#   results/tables/{task}.{csv,md}                                 merged table of one task
#   results/plots/{task}_tradeoff.png                             accuracy vs latency figure (in the report)
#   results/logs/<same path>.log, results/benchmarks/<same path>.tsv  one per rule and output


from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/ingest.smk"
include: "rules/splits.smk"
include: "rules/semantic.smk"
include: "rules/seqrec.smk"
include: "rules/llm.smk"
include: "rules/tables.smk"
include: "rules/report.smk"


# Default target: the sequential-recommendation table for the configured datasets and models.
rule all:
    default_target: True
    input:
        "results/tables/seqrec.csv",
        "results/tables/seqrec.md",
        "results/plots/seqrec_tradeoff.png",
