# Split a dataset (loo: leave-one-out; ratio_8_1_1: P5's seeded 8:1:1) with item indexing and a leakage probe.
rule split_dataset:
    input:
        interactions="results/{dataset}/data/interactions.parquet",
    output:
        train="results/{dataset}/splits/{split}/train.parquet",
        valid="results/{dataset}/splits/{split}/valid.parquet",
        test="results/{dataset}/splits/{split}/test.parquet",
        item_index="results/{dataset}/splits/{split}/item_index.parquet",
        stats="results/{dataset}/splits/{split}/stats.json",
    log:
        "results/logs/{dataset}/splits/{split}.log",
    benchmark:
        "results/benchmarks/{dataset}/splits/{split}.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        seed=config["splits"]["seed"],
        indexing=config["splits"]["indexing"],
    script:
        "../scripts/split.py"


# Build a task's own data (explanation: Sentires-like extraction; review: text-summary pairs; ctr: labelled pairs).
rule prepare_task_data:
    input:
        unpack(task_data_inputs),
    output:
        train=paths.partial(paths.TASK_DATA, part="train"),
        valid=paths.partial(paths.TASK_DATA, part="valid"),
        test=paths.partial(paths.TASK_DATA, part="test"),
        stats=paths.TASK_DATA_STATS,
    log:
        "results/logs/{dataset}/{task}/data.log",
    benchmark:
        "results/benchmarks/{dataset}/{task}/data.tsv"
    wildcard_constraints:
        task=tasks_with_own_data(),
    conda:
        "../envs/llmrecbench.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        ground_truth=lambda w: task_block(w.task).get("ground_truth", {}),
    script:
        "../scripts/prepare_task_data.py"
