# Train one sequential recommender on the leave-one-out split (early stopping on valid NDCG@10, resumable).
rule train_seqrec:
    input:
        unpack(semantic_inputs),
        train="results/{dataset}/splits/loo/train.parquet",
        valid="results/{dataset}/splits/loo/valid.parquet",
        test="results/{dataset}/splits/loo/test.parquet",
        item_table="results/{dataset}/data/items.parquet",
    output:
        model="results/{dataset}/seqrec/{model}/seed{seed}/model.pt",
        train_log="results/{dataset}/seqrec/{model}/seed{seed}/train_log.json",
    log:
        "results/logs/{dataset}/seqrec/{model}/seed{seed}/train.log",
    benchmark:
        "results/benchmarks/{dataset}/seqrec/{model}/seed{seed}/train.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        spec=trained_seqrec_spec,
        evaluation=config["evaluation"],
        checkpoint_root="results/{dataset}/seqrec/{model}/seed{seed}/checkpoints",
    script:
        "../scripts/train_seqrec.py"


# Evaluate one trained model on the test users: full ranking over all items -> one table cell.
rule evaluate_seqrec:
    input:
        unpack(trained_model),
        train="results/{dataset}/splits/loo/train.parquet",
        valid="results/{dataset}/splits/loo/valid.parquet",
        test="results/{dataset}/splits/loo/test.parquet",
        item_table="results/{dataset}/data/items.parquet",
        split_stats="results/{dataset}/splits/loo/stats.json",
    output:
        metrics="results/{dataset}/seqrec/{model}/seed{seed}/metrics.json",
        topk="results/{dataset}/seqrec/{model}/seed{seed}/topk.parquet",
        timing="results/{dataset}/seqrec/{model}/seed{seed}/timing.json",
        provenance="results/provenance/{dataset}/seqrec/{model}/seed{seed}.json",
    log:
        "results/logs/{dataset}/seqrec/{model}/seed{seed}/evaluate.log",
    benchmark:
        "results/benchmarks/{dataset}/seqrec/{model}/seed{seed}/evaluate.tsv"
    conda:
        "../envs/llmrecbench.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        spec=seqrec_model_spec,
        evaluation=config["evaluation"],
        indexing=config["splits"]["indexing"],
    script:
        "../scripts/evaluate_seqrec.py"
