# Ingest a dataset's raw files into canonical parquet (k-core filtered, optionally user-subsampled) + stats.
rule ingest_dataset:
    input:
        unpack(raw_files_of_dataset),
    output:
        interactions="results/{dataset}/data/interactions.parquet",
        item_table="results/{dataset}/data/items.parquet",
        users="results/{dataset}/data/users.parquet",
        stats="results/{dataset}/data/stats.json",
    log:
        "results/logs/{dataset}/data/ingest.log",
    benchmark:
        "results/benchmarks/{dataset}/data/ingest.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        spec=dataset_spec,
        seed=config["splits"]["seed"],
    script:
        "../scripts/ingest.py"
